#!/usr/bin/env bash
# Runs every fuzz target of the module for a while each (CI only runs their seed corpora as
# ordinary tests). Usage: tests/fuzz.sh [duration per target, default 1m] [package pattern]
# New failing inputs land in the package's testdata/fuzz/<Target>/, to commit with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-1m}
pattern=${2:-./...}
status=0
for pkg in $(go list "$pattern"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      status=1
    fi
  done
done
exit $status
