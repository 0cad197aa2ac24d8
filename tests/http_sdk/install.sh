#!/usr/bin/env bash
# Installs the official OpenAI Node SDK (the version package.json pins) into
# DIR (a folder of the build tree) for openai_sdk_test.mjs. Test-time only:
# nothing is vendored; npm reaches its registry. Skips the install when DIR
# already holds that version.
#   install.sh DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
want=$(node -p "require('$here/package.json').dependencies.openai")
have=$(node -p "try { require('$dir/node_modules/openai/package.json').version } catch { '' }")
if [ "$have" = "$want" ]; then
  echo "http_sdk: openai $have already in $dir"
  exit 0
fi
cp "$here/package.json" "$dir/package.json"
# --omit=peer: the SDK's optional peers (zod, ws) are not needed here.
(cd "$dir" && npm install --no-audit --no-fund --omit=peer --loglevel=error)
echo "http_sdk: installed openai $(node -p "require('$dir/node_modules/openai/package.json').version") into $dir"
