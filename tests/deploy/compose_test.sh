#!/usr/bin/env bash
# Brings up deploy/docker-compose.yml with podman-compose: lumend (the image
# tests/deploy/image_test.sh built, tagged as the compose file names it) and
# Prometheus (the Debian stand-in from scripts/podman-setup.sh). Prometheus
# inside compose scrapes lumend by its service name and sees generated tokens.
# Grafana's image cannot be pulled here; its provisioning and every dashboard
# query are checked by tests/deploy/prometheus_test.py instead.
#   tests/deploy/compose_test.sh [BUILD_DIR]   (run after image_test.sh)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
testdata=$(cd "$src/../shared/testdata" && pwd)
project=lumen-compose-test-$$
log() { printf 'compose_test: %s\n' "$*"; }
compose() { podman-compose -p "$project" -f "$src/deploy/docker-compose.yml" "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() {
  printf 'compose_test: FAIL: %s\n' "$*" >&2
  compose logs 2>&1 | tail -n 40 >&2 || true
  exit 1
}
cleanup() { compose down -v >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'printf "compose_test: FAIL: line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

"$src/scripts/podman-setup.sh" >/dev/null
podman image exists lumen:test || fail "no lumen:test image: run tests/deploy/image_test.sh first"
podman tag lumen:test lumen:latest

export MODEL_DIR="$testdata/models" MODEL=stories260K.gguf THREADS=2 LUMEN_BIND=127.0.0.1
export GRPC_PORT=$(free_port) METRICS_PORT=$(free_port) PROMETHEUS_PORT=$(free_port)
export HTTP_PORT=$(free_port)
t0=$(date +%s)
compose up -d lumend prometheus >/dev/null 2>&1 || fail "podman-compose up failed"
addr=127.0.0.1:$GRPC_PORT
for _ in $(seq 1 300); do "$build/bin/lumen" health --addr "$addr" >/dev/null 2>&1 && break; sleep 0.2; done
[[ $("$build/bin/lumen" health --addr "$addr") == *SERVING* ]] || fail "lumend in compose is not SERVING"
"$build/bin/lumen" generate --addr "$addr" --prompt 'Once upon a time' --max-tokens 64 \
  --temperature 0 --ignore-eos >/dev/null 2>&1 || fail "generate through compose failed"
log "lumend up on $addr; 64 tokens generated"
models=$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/models") || fail "the HTTP API is not published"
grep -q '"id":"stories260K"' <<<"$models" || fail "/v1/models through compose: $models"
log "the OpenAI-compatible API is published on 127.0.0.1:$HTTP_PORT"

# Prometheus (scrape_interval 5s) must reach lumend as lumend:9464.
query="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query"
value=""
for _ in $(seq 1 120); do
  value=$(curl -sf --get "$query" --data-urlencode 'query=sum(lumen_generation_tokens_total{job="lumend"})' |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true)
  [ -n "$value" ] && [ "${value%.*}" -ge 64 ] && break
  sleep 0.5
done
[ -n "$value" ] && [ "${value%.*}" -ge 64 ] || fail "Prometheus never saw lumend's generated tokens (got '$value')"
target=$(curl -sf "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets" |
  /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"][0]; print(t["scrapeUrl"], t["health"])')
[[ $target == "http://lumend:9464/metrics up" ]] || fail "scrape target: $target"
log "Prometheus scrapes $target and sees $value generated tokens"
log "passed in $(($(date +%s) - t0)) s (grafana not started: its image cannot be pulled here)"
