#!/usr/bin/env bash
# The repository stands alone: no tracked file may read the folder that sits
# beside the checkout on developer machines (the parent's shared/ folder) or
# an absolute workplace path. Fixtures belong in tests/data/, design notes in
# docs/. This script is the one file allowed to name the patterns.
#   bash tests/repo/standalone_check.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
self="tests/repo/standalone_check.sh"
# Built from pieces so that the patterns appear in this file only.
patterns=("..""/shared" "/work""/shared")
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files)
else  # an exported tree without .git: every file
  mapfile -t files < <(find . -type f -not -path './build*' | sed 's|^\./||')
fi
found=0
for f in "${files[@]}"; do
  [[ "$f" == "$self" || ! -f "$f" ]] && continue
  for p in "${patterns[@]}"; do
    if grep -I -n -F -- "$p" "$f"; then
      echo "standalone_check: $f reads '$p' (outside the repository)" >&2
      found=1
    fi
  done
done
if ((found)); then
  echo "standalone_check: FAILED: copy what is needed into the repository" >&2
  exit 1
fi
echo "standalone_check: ${#files[@]} tracked files, none reads outside the repository"
