// ThreadSanitizer builds only (LUMEN_TSAN): makes Abseil's Mutex, CondVar
// and Notification visible to TSan.
//
// Why: Debian's libabsl_synchronization is not built with TSan, so its
// atomics and futex waits are invisible and every access guarded by an
// absl::Mutex would be reported as a race (and no lock-order inversion
// could be found). These definitions interpose the library's exported
// functions (an executable's definition wins over a shared library's, for
// the library's own callers too): each reports the lock operation through
// TSan's mutex annotation interface and calls the library's function, found
// with dlsym(RTLD_NEXT). Nothing is suppressed: Lumen's accesses stay
// checked against the now-visible locks.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define LUMEN_STR2(x) #x
#define LUMEN_STR(x) LUMEN_STR2(x)

namespace {

// The library's definition of `absl::<inline namespace>::<suffix>`, given
// its mangled suffix ("5Mutex4LockEv"); `prefix` is "_ZN" or "_ZNK".
template <class Fn>
Fn Real(const char* prefix, const char* suffix) {
  const char* ns = LUMEN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(prefix) + "4absl" +
                           std::to_string(std::strlen(ns)) + ns + suffix;
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found in Abseil\n",
                 name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Depth of interposed calls on this thread: the library's functions call
// each other (AwaitWithTimeout -> AwaitWithDeadline, Notify -> Lock), and
// only the outermost call is reported to TSan.
thread_local int depth = 0;

struct Outermost {
  Outermost() : outer(depth++ == 0) {}
  ~Outermost() { --depth; }
  const bool outer;
};

// Declares `real` (the library's function); a call nested in another
// interposed call goes straight to it with the arguments given.
#define REAL(prefix, suffix, Fn, ...)                \
  static const auto real = Real<Fn>(prefix, suffix); \
  const Outermost scope;                             \
  if (!scope.outer) return real(__VA_ARGS__)

constexpr unsigned kRead = __tsan_mutex_read_lock;

// A wait inside the library that releases `mu` and takes it again (Await,
// CondVar::Wait): TSan sees an unlock then a lock; the library's own work,
// including evaluating Conditions of Lumen's code under the lock, happens
// in the ignored region between them.
template <class F>
auto UnlockedWhile(void* mu, unsigned flags, F&& wait) {
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = wait();
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// Whether `pc` lies in one of gRPC's libraries (not built with TSan).
bool InGrpcLibrary(void* pc) {
  Dl_info info;
  if (dladdr(pc, &info) == 0 || info.dli_fname == nullptr) return false;
  const char* slash = std::strrchr(info.dli_fname, '/');
  const char* base = slash != nullptr ? slash + 1 : info.dli_fname;
  return std::strncmp(base, "libgrpc", 7) == 0 ||
         std::strncmp(base, "libgpr", 6) == 0;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// A mutex that gRPC's own code destroys (a channel's, a thread pool's) was
// handed to the destroying thread by gRPC's reference counts, which TSan
// cannot see: its destruction is not reported (freeing its memory still
// ends TSan's record of it); its locks and unlocks still are.
Mutex::~Mutex() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5MutexD2Ev");
  if (!InGrpcLibrary(__builtin_return_address(0))) {
    __tsan_mutex_destroy(this, 0);
  }
  real(this);
}

void Mutex::Lock() {
  REAL("_ZN", "5Mutex4LockEv", void (*)(Mutex*), this);
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::ReaderLock() {
  REAL("_ZN", "5Mutex10ReaderLockEv", void (*)(Mutex*), this);
  __tsan_mutex_pre_lock(this, kRead);
  real(this);
  __tsan_mutex_post_lock(this, kRead, 0);
}

bool Mutex::TryLock() {
  REAL("_ZN", "5Mutex7TryLockEv", bool (*)(Mutex*), this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool ok = real(this);
  __tsan_mutex_post_lock(
      this, __tsan_mutex_try_lock | (ok ? 0 : __tsan_mutex_try_lock_failed), 0);
  return ok;
}

bool Mutex::ReaderTryLock() {
  REAL("_ZN", "5Mutex13ReaderTryLockEv", bool (*)(Mutex*), this);
  __tsan_mutex_pre_lock(this, kRead | __tsan_mutex_try_lock);
  const bool ok = real(this);
  __tsan_mutex_post_lock(
      this,
      kRead | __tsan_mutex_try_lock | (ok ? 0 : __tsan_mutex_try_lock_failed),
      0);
  return ok;
}

void Mutex::Unlock() {
  REAL("_ZN", "5Mutex6UnlockEv", void (*)(Mutex*), this);
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  REAL("_ZN", "5Mutex12ReaderUnlockEv", void (*)(Mutex*), this);
  __tsan_mutex_pre_unlock(this, kRead);
  real(this);
  __tsan_mutex_post_unlock(this, kRead);
}

void Mutex::LockWhen(const Condition& cond) {
  REAL("_ZN", "5Mutex8LockWhenERKNS0_9ConditionE",
       void (*)(Mutex*, const Condition&), this, cond);
  __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL("_ZN", "5Mutex14ReaderLockWhenERKNS0_9ConditionE",
       void (*)(Mutex*, const Condition&), this, cond);
  __tsan_mutex_pre_lock(this, kRead);
  real(this, cond);
  __tsan_mutex_post_lock(this, kRead, 0);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  REAL("_ZN", "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE",
       bool (*)(Mutex*, const Condition&, Duration), this, cond, timeout);
  __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, timeout);
  __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  REAL("_ZN", "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE",
       bool (*)(Mutex*, const Condition&, Time), this, cond, deadline);
  __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, deadline);
  __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

void Mutex::Await(const Condition& cond) {
  REAL("_ZN", "5Mutex5AwaitERKNS0_9ConditionE",
       void (*)(Mutex*, const Condition&), this, cond);
  UnlockedWhile(this, 0, [&] {
    real(this, cond);
    return 0;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  REAL("_ZN", "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE",
       bool (*)(Mutex*, const Condition&, Duration), this, cond, timeout);
  return UnlockedWhile(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  REAL("_ZN", "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE",
       bool (*)(Mutex*, const Condition&, Time), this, cond, deadline);
  return UnlockedWhile(this, 0, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  REAL("_ZN", "7CondVar4WaitEPNS0_5MutexE", void (*)(CondVar*, Mutex*), this,
       mu);
  UnlockedWhile(mu, 0, [&] {
    real(this, mu);
    return 0;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  REAL("_ZN", "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE",
       bool (*)(CondVar*, Mutex*, Duration), this, mu, timeout);
  return UnlockedWhile(mu, 0, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  REAL("_ZN", "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE",
       bool (*)(CondVar*, Mutex*, Time), this, mu, deadline);
  return UnlockedWhile(mu, 0, [&] { return real(this, mu, deadline); });
}

// A notification is a release by Notify and an acquire by a wait that saw
// it (HasBeenNotified is inline and cannot be interposed).
void Notification::Notify() {
  REAL("_ZN", "12Notification6NotifyEv", void (*)(Notification*), this);
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  REAL("_ZNK", "12Notification19WaitForNotificationEv",
       void (*)(const Notification*), this);
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  REAL("_ZNK", "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE",
       bool (*)(const Notification*, Duration), this, timeout);
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  REAL("_ZNK", "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE",
       bool (*)(const Notification*, Time), this, deadline);
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
