#include "tests/test_support.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace lumen::testing {

std::string TestDataPath(const std::string& relative) {
  return std::string(LUMEN_TESTDATA) + "/" + relative;
}

std::string BinaryDir() { return LUMEN_BINARY_DIR; }

std::string MakeTempDir() {
  std::string tmpl = "/tmp/lumen_test_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "/tmp";
  return tmpl;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lumen::testing
