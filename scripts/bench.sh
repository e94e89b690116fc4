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
mkdir -p .cache/bench
if ((${#pkgs[@]} == 0)); then
	echo "bench: no package has a benchmark yet"
else
	echo "bench: ${#pkgs[@]} packages, -benchtime $benchtime"
	go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count=1 "${pkgs[@]}" | tee .cache/bench/latest.txt
fi

# Orders API load test (docs/BENCHMARKS.md, "Orders API"): 10-recipient
# orders from 32 clients through the real handler stack on a temporary
# SQLite file; fails on any error or SQLITE_BUSY. BENCH_ORDERS=0 skips it.
orders=${BENCH_ORDERS:-3000}
if ((orders > 0)); then
	echo "--- orders API (scripts/benchorders -n $orders -c 32 -recipients 10 -duration 60s)"
	go run ./scripts/benchorders -n "$orders" -c 32 -recipients 10 -duration 60s | tee .cache/bench/orders.txt
fi

# KeyGen on the real page in headless Chromium (docs/BENCHMARKS.md,
# "KeyGen"): the real binary in dev mode, BENCH_KEYGEN_N keys side by side
# (default 20): CSR ready with the module vs WebCrypto generateKey, the
# real click-to-CSR, click-to-.p12, page-ready time and the module sizes.
# BENCH_KEYGEN_N=0 skips it.
keygen_n=${BENCH_KEYGEN_N:-20}
if ((keygen_n > 0)); then
	echo "--- KeyGen page (e2e TestKeyGenBench, n = $keygen_n)"
	rm -f .cache/bench/keygen.txt
	CERTDESK_KEYGEN_BENCH=1 CERTDESK_KEYGEN_BENCH_N="$keygen_n" \
		go test ./e2e -run '^TestKeyGenBench$' -count=1 -v -timeout 20m >.cache/bench/keygen.log 2>&1 ||
		{ tail -50 .cache/bench/keygen.log; echo "bench: KeyGen benchmark failed"; exit 1; }
	cat .cache/bench/keygen.txt
fi
