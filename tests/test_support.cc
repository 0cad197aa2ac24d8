#include "tests/test_support.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/prefault.h"

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

CommandResult RunCommand(const std::string& command, const std::string& input) {
  const std::string dir = MakeTempDir();
  const std::string in = dir + "/stdin", out = dir + "/stdout",
                    err = dir + "/stderr";
  {
    std::ofstream f(in, std::ios::binary);
    f << input;
  }
  const std::string full = command + " < " + in + " > " + out + " 2> " + err;
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  std::remove(in.c_str());
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir.c_str());
  return r;
}

std::string BinPath(const std::string& name) {
  return BinaryDir() + "/bin/" + name;
}

bool KernelPopulatesPages() {
  const size_t bytes = 1 << 16;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const bool ok = PopulatePages(p, bytes);
  munmap(p, bytes);
  return ok;
}

}  // namespace lumen::testing
