#!/usr/bin/env bash
# Checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations of
# Lumen's own sources with clang's -Wthread-safety (GCC ignores them), as
# errors, together with -Werror on everything else clang warns about in
# those files. Compiles with -fsyntax-only from the Release tree's
# compile_commands.json, so it costs a parse, not a second build. A quick
# check while developing: CI gets the same from scripts/test.sh's
# ThreadSanitizer tree, which clang builds with -Werror.
#   scripts/thread_safety_check.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
db="$build/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "thread-safety: $db is missing (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)" >&2
  exit 2
fi
python3 - "$db" "$(pwd)" <<'EOF' | xargs -0 -P "$(nproc)" -n 1 bash -c 'eval "$0"'
import json, os, shlex, sys
db, root = sys.argv[1], sys.argv[2]
# The daemon's code: where the lock annotations are.
dirs = ("base/", "engine/", "server/", "retrieval/", "chat/")
for entry in json.load(open(db)):
    src = os.path.relpath(entry["file"], root)
    if not src.startswith(dirs) or "/build" in src:
        continue
    args = shlex.split(entry["command"])
    # Drop the GCC driver, the output and GCC-only warning switches.
    out, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a.startswith("-Wno-restrict"):
            continue
        out.append(a)
    cmd = ["clang++", "-fsyntax-only", "-Wthread-safety", "-Werror",
           "-Wno-unknown-warning-option", "-Wno-unused-command-line-argument"] + out
    sys.stdout.write("cd %s && %s\0" % (shlex.quote(entry["directory"]),
                                        " ".join(shlex.quote(c) for c in cmd)))
EOF
echo "thread-safety: clean"
