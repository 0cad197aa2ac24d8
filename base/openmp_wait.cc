#include "base/openmp_wait.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace lumen {

namespace {
constexpr char kSpinCount[] = "1000";
}  // namespace

void UseLumenOpenMpWaitPolicy(char** argv) {
  if (getenv("OMP_WAIT_POLICY") != nullptr ||
      getenv("GOMP_SPINCOUNT") != nullptr) {
    return;
  }
  setenv("GOMP_SPINCOUNT", kSpinCount, /*overwrite=*/1);
  execv("/proc/self/exe", argv);
  // Still here: exec failed. libgomp keeps the policy it started with.
}

const char* OpenMpWaitPolicy() {
  static const std::string* policy = [] {
    auto* s = new std::string();
    for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
      if (const char* v = getenv(name)) {
        if (!s->empty()) *s += " ";
        *s += std::string(name) + "=" + v;
      }
    }
    if (s->empty()) *s = "libgomp default";
    return s;
  }();
  return policy->c_str();
}

}  // namespace lumen
