#include "tests/server/python_jsonschema.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace lumen::testing {

std::string ValidateWithPython(const nlohmann::json& cases) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/tool_calls_", getpid(), ".json");
  std::ofstream(path) << cases.dump();
  const std::string command = absl::StrCat(
      "python3 -c 'import json, sys, jsonschema\n"
      "cases = json.load(open(sys.argv[1]))\n"
      "for c in cases: jsonschema.validate(c[\"instance\"], c[\"schema\"])\n"
      "print(\"valid\", len(cases))' ",
      path, " 2>&1");
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  std::remove(path.c_str());
  if (rc == 0 && out == absl::StrCat("valid ", cases.size(), "\n")) return "";
  return out.empty() ? "python3 failed" : out;
}

}  // namespace lumen::testing
