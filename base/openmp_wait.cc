#include "base/openmp_wait.h"

#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace lumen {

namespace {
constexpr char kSpinCount[] = "1000";
}  // namespace

void UseLumenOpenMpWaitPolicy(char** argv) {
  if (getenv("OMP_WAIT_POLICY") != nullptr ||
      getenv("GOMP_SPINCOUNT") != nullptr) {
    return;
  }
  // The binary's own path, not /proc/self/exe: exec names the process after
  // the path's last part (ps, pkill and core files would see "exe").
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return;
  path[n] = '\0';
  if (setenv("GOMP_SPINCOUNT", kSpinCount, /*overwrite=*/1) != 0) return;
  execv(path, argv);
  // Still here: exec failed, and libgomp keeps the policy it started with.
  unsetenv("GOMP_SPINCOUNT");
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

void RunInTransientOpenMpTeam(int num_threads,
                              const std::function<void()>& fn) {
  std::thread worker([&] {
    omp_set_num_threads(num_threads);
    fn();
  });
  worker.join();
}

}  // namespace lumen
