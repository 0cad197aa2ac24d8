#!/usr/bin/env bash
# Every shared library that lumend and lumen need must belong to a Debian
# package the Dockerfile's runtime stage installs, and the Dockerfile must
# build with the same setup script CI runs.
#   runtime_deps_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
# The runtime stages: from the slim base on, without the build stage.
runtime=$(awk '/^FROM /{keep = /bookworm-slim|^FROM runtime-deps/} keep' "$src/Dockerfile")
missing=0
checked=0
# One dpkg query for every library (a query per library takes a minute).
declare -A owner
libs=$(for bin in lumend lumen; do ldd "$build/bin/$bin" | awk '/=>/ {print $3}'; done | sort -u)
paths=$(for lib in $libs; do echo "$lib"; readlink -f "$lib"; done | sort -u)
while IFS= read -r line; do
  owner["${line#*: }"]="${line%%:*}"
done < <(dpkg -S $paths 2>/dev/null | sed 's/, [^:]*//')
for lib in $libs; do
  pkg=${owner[$(readlink -f "$lib")]:-${owner[$lib]:-}}
  if [ -z "$pkg" ]; then
    echo "FAIL: $lib is needed but no Debian package owns it"
    missing=$((missing + 1))
    continue
  fi
  checked=$((checked + 1))
  if ! grep -qw -- "$pkg" <<<"$runtime"; then
    echo "FAIL: $lib comes from package $pkg, not installed by the runtime stage"
    missing=$((missing + 1))
  fi
done
grep -qE '^RUN .*scripts/setup.sh' "$src/Dockerfile" || { echo "FAIL: build stage does not run scripts/setup.sh"; missing=$((missing + 1)); }
grep -A1 'HEALTHCHECK' "$src/Dockerfile" | grep -q '"lumen", "health"' || { echo "FAIL: no HEALTHCHECK with lumen health"; missing=$((missing + 1)); }
grep -q '^USER lumen' "$src/Dockerfile" || { echo "FAIL: runtime does not run as a non-root user"; missing=$((missing + 1)); }
echo "runtime deps: $checked libraries checked, $missing problems"
[ "$checked" -gt 5 ] && [ "$missing" -eq 0 ]
