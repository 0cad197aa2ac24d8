#!/usr/bin/env bash
# Installs dependencies, builds, and starts lumend serving a model:
#   scripts/serve.sh [MODEL.gguf] [extra lumend flags...]
# Without MODEL it serves the shared test model (../shared/testdata) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
  model=../shared/testdata/models/stories260K.gguf
  if [ ! -f "$model" ]; then
    echo "serve: no model given and $model is absent; usage: scripts/serve.sh MODEL.gguf" >&2
    exit 2
  fi
fi
echo "serve: starting lumend on $model (Ctrl-C stops it); try: build/bin/lumen generate --prompt 'Once upon a time' --max-tokens 40"
exec build/bin/lumend --model "$model" "$@"
