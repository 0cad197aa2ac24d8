#!/usr/bin/env bash
# Runs the threaded tests of a ThreadSanitizer tree (see scripts/test.sh)
# and fails on any TSan report, from the test programs or from the lumend
# processes they start.
#   scripts/tsan_check.sh [BUILD_DIR]   (default build-tsan/)
# libomp's barriers are made visible to TSan by LLVM's Archer tool
# (OMP_TOOL_LIBRARIES), Abseil's locks by base/tsan_absl_sync.cc;
# tests/tsan.supp covers only the other uninstrumented Debian libraries
# (../shared/notes/tsan-and-shutdown.md).
set -uo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-tsan}"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
OMP_TOOL_LIBRARIES="$(clang++ -print-resource-dir)/../../libarcher.so"
export OMP_TOOL_LIBRARIES OMP_WAIT_POLICY=passive
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp log_path=$logs/report exitcode=0 second_deadlock_stack=1 history_size=4"
# lumend under concurrent, cancelled, deadlined, quota-limited, draining and
# adapter-unloading traffic.
lumend_tests=(
  LumendTest.SixteenConcurrentStreamsMatchTheirSoloRuns
  LumendTest.ExpiredDeadlineFreesItsBlocks
  LumendTest.BadParametersAreRejectedWithoutDisturbingOthers
  'LumendQueueTest.*' 'LumendShutdownTest.*' 'MetricsTest.*'
  PipelineTest.CancelStopsGeneration
  PipelineTest.ShutdownWhileAnUnloadWaitsExitsCleanly
  QuotaTest.ConcurrentRequests QuotaTest.RefusedRequestsReturnTheirSlot
  QuotaTest.SighupReloadsKeysWithoutDroppingRequests
  AdapterTest.UnloadDuringTrafficWaitsAndThenRefuses
)
failed=0
run() {
  local start=$SECONDS
  "$@" >"$logs/out" 2>&1 || { cat "$logs/out"; failed=1; }
  tail -n 1 "$logs/out"
  echo "  ($(basename "$1"): $((SECONDS - start)) s)"
}
run "$build/tests/engine_thread_test"
run "$build/tests/server_unit_test"
run "$build/tests/embedding_worker_test"
run "$build/tests/lumend_test" --gtest_filter="$(IFS=:; echo "${lumend_tests[*]}")"
run "$build/tests/http_api_test" --gtest_filter='*Stream*:*Cancel*'
if compgen -G "$logs/report*" >/dev/null; then
  cat "$logs"/report*
  echo "tsan_check: ThreadSanitizer reported the above ($(cat "$logs"/report* |
    grep -c '^WARNING: ThreadSanitizer') reports)" >&2
  failed=1
fi
exit "$failed"
