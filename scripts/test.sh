#!/usr/bin/env bash
# Builds and runs Lumen's whole test suite:
#   1. Release tree build/: every test (unit, CLI, integration) with ctest.
#   2. build-asan/: the unit tests again under AddressSanitizer + UBSan.
#   3. With clang:
#      - build-tsan/: the threaded tests and the lumend they start under
#        ThreadSanitizer (scripts/tsan_check.sh); the tree is built with
#        -Werror, so clang's -Wthread-safety checks every lock annotation;
#      - the GGUF, chat-template, tool-call and gRPC-request libFuzzer
#        targets, bounded.
#   4. The Docker image: built from a clean copy with podman (its build stage
#      runs scripts/setup.sh on a minbase Debian) and run; then compose.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps --test

# Spinning OpenMP threads collapse on a shared 2-core machine (see
# ../shared/notes/onednn-2.6-on-avx2.md): tests use passive waiting.
export OMP_WAIT_POLICY=passive
JOBS=$(nproc)
SECONDS=0
stage() { echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }

# The image's dependency stages (apt on a clean Debian: network and dpkg,
# little CPU) build in the background while the trees below compile; the
# image stage at the end finds them in podman's layer cache. Background work
# runs in its own process group, stopped whole if this script ends early.
prefetch_log=$(mktemp)
setsid -w tests/deploy/image_test.sh --prefetch >"$prefetch_log" 2>&1 &
prefetch_pid=$!
declare -A fuzz_pids=()
stop_background() {
  local pid
  for pid in "$prefetch_pid" "${fuzz_pids[@]}"; do
    [[ -n $pid ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  rm -f "$prefetch_log"
}
trap stop_background EXIT
trap 'exit 130' INT TERM

stage "release build and full suite"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUMEN_WERROR=ON \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
cmake --build build --parallel "$JOBS"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 900)

# clang at -O1 with line tables only: the unit tests' ASan tree compiled in
# ~40% of the time GCC needed at -O2 -g (the longest stage of this script).
# With clang the same tree is also instrumented for libFuzzer and builds the
# gRPC request fuzzer below.
stage "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
if command -v clang++ >/dev/null 2>&1; then
  asan_compiler=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLUMEN_FUZZ=ON)
else
  asan_compiler=(-DLUMEN_FUZZ=OFF)
fi
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${asan_compiler[@]}" \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DLUMEN_SANITIZE=ON -DLUMEN_UNIT_TESTS_ONLY=ON >/dev/null
cmake --build build-asan --parallel "$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$JOBS" -L unit --timeout 900)

if command -v clang++ >/dev/null 2>&1; then
  # The tests whose threads matter (engine thread, executor, embedding
  # worker, lumend under concurrent, cancelled, quota-limited and HTTP
  # traffic) and the programs they start. -Werror with clang makes
  # -Wthread-safety (ABSL_GUARDED_BY and friends, ignored by GCC) an error
  # in every source lumend is built from.
  stage "ThreadSanitizer and clang -Wthread-safety -Werror (build-tsan)"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    -DLUMEN_TSAN=ON -DLUMEN_WERROR=ON >/dev/null
  cmake --build build-tsan --parallel "$JOBS" --target engine_thread_test server_unit_test \
    embedding_worker_test lumend lumen lumend_test http_api_test
  scripts/tsan_check.sh build-tsan

  # Each libFuzzer run is one process on one core: they run two at a time.
  stage "fuzzing, bounded (libFuzzer): GGUF reader, chat templates, tool calls, gRPC requests"
  cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz --parallel "$JOBS"
  fuzz_dir=$(mktemp -d)
  # fuzz NAME FUZZER ARGS...: starts a bounded run in the background; its
  # corpus is $fuzz_dir/NAME (seeded by the caller), its log NAME.log and any
  # crashing input NAME-crash-*.
  fuzz() {
    local name=$1 fuzzer=$2
    shift 2
    mkdir -p "$fuzz_dir/$name"
    setsid -w "$fuzzer" -artifact_prefix="$fuzz_dir/$name-" "$@" "$fuzz_dir/$name" \
      >"$fuzz_dir/$name.log" 2>&1 &
    fuzz_pids[$name]=$!
  }
  # Waits for the running fuzzers; on a finding prints the broken promise
  # (for the request fuzzer), the input and the crash, and fails.
  fuzz_wait() {
    local name failed=0
    for name in "${!fuzz_pids[@]}"; do
      if wait "${fuzz_pids[$name]}"; then
        echo "$name: $(tail -n 1 "$fuzz_dir/$name.log")"
      else
        echo "== $name found a failure:"
        grep -v '^#' "$fuzz_dir/$name.log" | tail -n 60
        ls -d "$fuzz_dir/$name-"* 2>/dev/null || true
        failed=1
      fi
    done
    fuzz_pids=()
    ((failed == 0)) || exit 1
  }
  mkdir -p "$fuzz_dir/gguf" "$fuzz_dir/jinja"
  cp ../shared/testdata/models/stories260K.gguf "$fuzz_dir/gguf/" 2>/dev/null || true
  fuzz gguf build-fuzz/gguf_fuzzer -runs=20000 -max_total_time=45 -max_len=65536
  cp ../shared/testdata/templates/*.jinja "$fuzz_dir/jinja/" 2>/dev/null || true
  fuzz jinja build-fuzz/jinja_fuzzer -runs=20000 -max_total_time=45 -max_len=20000 \
    -dict=tests/fuzz/jinja.dict
  fuzz_wait
  fuzz tool_call build-fuzz/tool_call_fuzzer -runs=20000 -max_total_time=30 -max_len=4096 \
    -dict=tests/fuzz/tool_call.dict
  # GenerateRequest / TokenizeRequest / DetokenizeRequest bytes through the
  # server's validation and preparation path (tests/fuzz/request_fuzzer.cc),
  # from the readable seeds in tests/fuzz/request_seeds (built in build-asan,
  # whose libraries carry the fuzzer's instrumentation).
  LUMEN_WRITE_SEEDS="$fuzz_dir/request" build-asan/tests/request_fuzzer
  fuzz request build-asan/tests/request_fuzzer -runs=200000 -max_total_time=45 -max_len=16384
  fuzz_wait
  rm -rf "$fuzz_dir"
fi
stage "Docker image and compose (podman)"
# A failed prefetch is only a warning: the image build below runs the same
# stages again and decides.
wait "$prefetch_pid" || echo "warning: the background prefetch of the image's dependency stages failed:"
prefetch_pid=
cat "$prefetch_log"
tests/deploy/image_test.sh build
tests/deploy/compose_test.sh build
stage "all tests passed"
