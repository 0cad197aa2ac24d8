#!/usr/bin/env bash
# Builds the project's Dockerfile from a clean copy of the checkout with
# podman (the build stage runs scripts/setup.sh on a minbase Debian: the
# clean-machine check) and runs the image as an operator would:
#   - stories260K mounted read-only at /models, ports on 127.0.0.1;
#   - `lumen generate` from the host returns llama2.c's reference text,
#     `lumen health` answers SERVING, /metrics is scraped;
#   - `podman healthcheck run` reports healthy, lumend runs as a non-root user;
#   - a collection ingested into the /data volume survives a restart;
#   - `podman stop` (SIGTERM) lets an in-flight stream finish, exit code 0;
#   - prints the runtime image size.
#   tests/deploy/image_test.sh [BUILD_DIR]   (BUILD_DIR has bin/lumen; default build)
#   tests/deploy/image_test.sh --prefetch    only the dependency stages
#     (build-deps, runtime-deps: apt on a clean Debian, mostly network and
#     dpkg), into podman's layer cache, where the full build finds them;
#     scripts/test.sh runs this in the background while it compiles.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
if [[ ${1:-} == --prefetch ]]; then
  "$src/scripts/podman-setup.sh"
  # The stages read scripts/setup.sh only: a context of that file alone.
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  mkdir -p "$ctx/scripts"
  cp -p "$src/Dockerfile" "$ctx/"
  cp -p "$src/scripts/setup.sh" "$ctx/scripts/"
  for stage in build-deps runtime-deps; do
    start=$(date +%s)
    podman build --pull=never --format docker --target "$stage" "$ctx" >"$ctx/log" 2>&1 || {
      tail -n 40 "$ctx/log" >&2
      echo "image_test: FAIL: podman build --target $stage" >&2
      exit 1
    }
    echo "image_test: stage $stage built in $(($(date +%s) - start)) s"
  done
  exit 0
fi
build=$(cd "${1:-$src/build}" && pwd)
testdata=$(cd "$src/../shared/testdata" && pwd)
lumen="$build/bin/lumen"
tag=lumen:test
name=lumen-image-test-$$
volume=lumen-image-test-data-$$
work=$(mktemp -d)

log() { printf 'image_test: %s\n' "$*"; }
fail() {
  printf 'image_test: FAIL: %s\n' "$*" >&2
  podman logs "$name" 2>&1 | tail -n 40 >&2 || true
  exit 1
}
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'printf "image_test: FAIL: line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
seconds() { date +%s; }

"$src/scripts/podman-setup.sh"

# A clean copy: tracked and new files, none of the ignored build trees.
log "copying the checkout"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
  tar --null -T - -cf -) | tar -xf - -C "$work"
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)

t0=$(seconds)
if [[ ${LUMEN_IMAGE_TEST_REUSE:-0} == 1 ]] && podman image exists "$tag"; then
  # For iterating on the checks below only: CI always builds.
  log "reusing the existing $tag (LUMEN_IMAGE_TEST_REUSE=1): NOT a clean-machine check"
  commit='[0-9a-f]*'  # the image may come from an earlier commit
else
log "building $tag (podman build, clean Debian build stage)"
# The dependency layers come from podman's cache when an earlier build (or
# --prefetch) made them from the same scripts/setup.sh; LUMEN_IMAGE_NO_CACHE=1
# runs apt on the clean base again.
no_cache=()
[[ ${LUMEN_IMAGE_NO_CACHE:-0} == 1 ]] && no_cache=(--no-cache)
podman build --pull=never --format docker "${no_cache[@]}" --build-arg "LUMEN_COMMIT=$commit" \
  -t "$tag" "$work" >"$work.build.log" 2>&1 || {
  tail -n 60 "$work.build.log" >&2
  fail "podman build failed"
}
rm -f "$work.build.log"
fi
t1=$(seconds)
size=$(podman image inspect "$tag" --format '{{.Size}}')
log "image built in $((t1 - t0)) s; runtime image size $((size / 1024 / 1024)) MiB ($size bytes)"

run_container() {
  podman run -d --name "$name" -p 127.0.0.1::50051 -p 127.0.0.1::9464 -p 127.0.0.1::8080 \
    -v "$testdata/models:/models:ro" -v "$volume:/data" \
    "$tag" --model /models/stories260K.gguf --threads 2 >/dev/null
  grpc_port=$(podman port "$name" 50051/tcp | sed 's/.*://')
  metrics_port=$(podman port "$name" 9464/tcp | sed 's/.*://')
  http_port=$(podman port "$name" 8080/tcp | sed 's/.*://')
  addr="127.0.0.1:$grpc_port"
  for _ in $(seq 1 300); do
    "$lumen" health --addr "$addr" >/dev/null 2>&1 && return 0
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || fail "container exited"
    sleep 0.2
  done
  fail "lumend did not become SERVING"
}

log "running the image"
run_container
health=$("$lumen" health --addr "$addr")
[[ $health == *SERVING* ]] || fail "lumen health said: $health"
log "lumen health: $health"

expected=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["printed_text"], end="")' \
  "$testdata/models/stories260K.greedy.json")
got=$("$lumen" generate --addr "$addr" --prompt '' --max-tokens 200 --temperature 0 2>/dev/null)
[ "$got" = "$expected" ] || fail "generated text differs from the reference:
$got"
log "lumen generate: the 200-token reference text, exactly"

got=$(curl -sf "http://127.0.0.1:$http_port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": [1], "max_tokens": 200, "temperature": 0}' |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")') ||
  fail "the HTTP API on port 8080 did not answer"
[ "$got" = "$expected" ] || fail "the HTTP API's text differs from the reference:
$got"
log "HTTP /v1/completions: the same reference text"

metrics=$(curl -sf "http://127.0.0.1:$metrics_port/metrics") || fail "no /metrics"
# Two requests of 200 tokens: gRPC and HTTP.
grep -q '^lumen_generation_tokens_total{.*} 400' <<<"$metrics" ||
  fail "/metrics lacks lumen_generation_tokens_total 400"
grep -q "^lumen_build_info{.*commit=\"$commit\"" <<<"$metrics" ||
  fail "/metrics lacks lumen_build_info with commit $commit"
log "/metrics: 400 generated tokens counted, build_info commit $commit"

podman healthcheck run "$name" >/dev/null || fail "podman healthcheck run: unhealthy"
status=$(podman inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null ||
  podman inspect -f '{{.State.Healthcheck.Status}}' "$name")
[ "$status" = healthy ] || fail "health status is $status"
uid=$(podman top "$name" huser | awk 'NR == 2 {print $1}')
[ -n "$uid" ] && [ "$uid" != root ] && [ "$uid" != 0 ] || fail "lumend runs as '$uid'"
log "healthcheck: $status; lumend runs as uid $uid"

# Knowledge in the /data volume survives a restart.
docs="$work/docs"
mkdir -p "$docs"
printf 'The lighthouse keeper of Ardmore polished the great lens every evening.\n' >"$docs/lighthouse.txt"
"$lumen" collection create stories --addr "$addr" >/dev/null || fail "collection create"
"$lumen" ingest --addr "$addr" --collection stories --quiet "$docs/lighthouse.txt" >/dev/null ||
  fail "ingest"
podman restart -t 30 "$name" >/dev/null
grpc_port=$(podman port "$name" 50051/tcp | sed 's/.*://')
addr="127.0.0.1:$grpc_port"
for _ in $(seq 1 300); do "$lumen" health --addr "$addr" >/dev/null 2>&1 && break; sleep 0.2; done
hits=$("$lumen" search --addr "$addr" --collection stories --query lighthouse --mode keyword) ||
  fail "search after restart"
grep -q lighthouse <<<"$hits" || fail "the ingested document is gone after a restart: $hits"
log "a collection ingested into /data survived a container restart"

# SIGTERM with a stream in flight: the stream completes, lumend exits 0.
"$lumen" generate --addr "$addr" --prompt 'Once upon a time' --max-tokens 1200 \
  --temperature 0 --ignore-eos >"$work/stream.out" 2>"$work/stream.err" &
client=$!
for _ in $(seq 1 200); do [ -s "$work/stream.out" ] && break; sleep 0.05; done
[ -s "$work/stream.out" ] || fail "the stream did not start"
podman stop -t 60 "$name" >/dev/null
wait "$client" || fail "the in-flight stream failed on SIGTERM: $(cat "$work/stream.err")"
grep -q '\[length\].*completion 1200 tokens' "$work/stream.err" ||
  fail "the stream did not finish its 1200 tokens: $(cat "$work/stream.err")"
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "lumend exited $code after SIGTERM"
# Read whole first: grep -q stopping early would fail the pipe (pipefail).
logs=$(podman logs "$name" 2>&1)
grep -q 'received SIGTERM' <<<"$logs" || fail "no SIGTERM in the log"
log "podman stop: the in-flight 1200-token stream finished, exit code 0"

log "passed in $(($(seconds) - t0)) s (build $((t1 - t0)) s); runtime image $((size / 1024 / 1024)) MiB"
