#!/usr/bin/env bash
# Runs the Go benchmarks of every package that has one and prints the
# results (also to .cache/bench/latest.txt for benchstat). It writes nothing
# into docs/. Usage: scripts/bench.sh [benchtime, default 1s] [package pattern...]
#
# Other engineers: add bench programs (load generators etc.) at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-1s}
shift || true
patterns=("${@:-./...}")

mapfile -t pkgs < <(go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${patterns[@]}" |
	while read -r path dir; do
		if grep -lqE '^func Benchmark[A-Z_]' "$dir"/*_test.go 2>/dev/null; then echo "$path"; fi
	done)
if ((${#pkgs[@]} == 0)); then
	echo "bench: no package has a benchmark yet"
	exit 0
fi
mkdir -p .cache/bench
echo "bench: ${#pkgs[@]} packages, -benchtime $benchtime"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count=1 "${pkgs[@]}" | tee .cache/bench/latest.txt
