#!/usr/bin/env bash
# Bounded soak run of lumend on loopback (issue 12): CLIENTS concurrent
# clients (streams read to the end, cancelled streams, deadlines too short,
# refused requests, Tokenize, RAG, upserts and searches, adapter load/use/
# unload, streamed and abandoned HTTP completions) for SECONDS, sampling the
# daemon's RSS and open descriptors every 5 s. Fails when a request ends other than as
# expected, when RSS grows more than 5% after warm-up, or when descriptors
# keep growing.
#   scripts/soak.sh [SECONDS=120] [CLIENTS=8]
# Environment: LUMEN_BUILD (build), LUMEN_SOAK_MODEL (stories260K.gguf from
# ../shared/testdata), LUMEN_SOAK_KINDS (a comma-separated subset of the
# request kinds in scripts/soak.py, to look for a leak). Needs build/bin/lumend and Debian's python3-grpcio.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
clients="${2:-8}"
build="${LUMEN_BUILD:-build}"
model="${LUMEN_SOAK_MODEL:-../shared/testdata/models/stories260K.gguf}"
[ -x "$build/bin/lumend" ] || { echo "soak: build $build/bin/lumend first" >&2; exit 2; }
export OMP_WAIT_POLICY=passive
exec /usr/bin/python3 scripts/soak.py "$build" "$PWD" "$model" "$seconds" "$clients"
