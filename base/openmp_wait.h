#pragma once
// The OpenMP wait policy of Lumen's programs. libgomp reads it from the
// environment when it loads, before main, so setting it from main takes a
// re-exec. The default is a short spin, then sleep (GOMP_SPINCOUNT=1000):
// on the 2-core VM, sleeping at once (OMP_WAIT_POLICY=passive) costs a
// futex wake-up of about 25 us at each of the ~60 parallel regions of a
// decode step (one-sequence decode ran at 0.6-0.75x of the spinning
// rate), while libgomp's own default spin (300000) is the one that
// collapses when another process takes a core (README, "Threads").

#include <functional>

namespace lumen {

// Unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, sets GOMP_SPINCOUNT and
// runs the program again (same pid, same argv). Call first in main. If the
// re-exec fails, the program goes on with libgomp's defaults. Under gdb or
// valgrind, set GOMP_SPINCOUNT yourself so that the program is not
// replaced. Builds with clang's libomp ignore GOMP_SPINCOUNT.
void UseLumenOpenMpWaitPolicy(char** argv);

// "GOMP_SPINCOUNT=1000", "OMP_WAIT_POLICY=passive", ...: the wait settings
// in the environment libgomp read at start, for benchmarks to print
// (OMP_DISPLAY_ENV=verbose shows what libgomp made of them).
const char* OpenMpWaitPolicy();

// Runs `fn` on a new thread with an OpenMP team of `num_threads`, and waits
// for it. For parallel work (loading a model) off the threads that own a
// team for good (engine threads, embedding lanes): libgomp keeps a thread's
// team until the thread exits, and once its threads outnumber the cores
// every OpenMP wait in the process spins only ~100 times before sleeping
// in the kernel. A team left on lumend's main thread did that: each of a
// decode step's parallel regions then paid a wake-up, and served decode
// ran about half as fast as `lumen bench engine`.
void RunInTransientOpenMpTeam(int num_threads, const std::function<void()>& fn);

}  // namespace lumen
