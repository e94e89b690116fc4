#!/usr/bin/env bash
# Builds static/keygen.wasm from ./wasm (when it has a main package), its
# precompressed forms (keygen.wasm.gz with gzip -9, keygen.wasm.br with
# brotli -q 11 when the brotli command exists, and keygen.wasm.sha256
# naming the module they were made from), and copies Go's wasm_exec.js
# next to it. All are embedded into the binary by static/embed.go, so this
# runs before any build of cmd/certdesk. handlers/keygen.go serves the
# module as /static/keygen.<sha256 prefix>.wasm.
#
# Flags (docs/keygen-notes.md, "Size"): no inlining (-gcflags=all=-l)
# compresses about 10% better; GOEXPERIMENT=nogreenteagc builds the classic
# garbage collector instead of Go 1.26's Green Tea one (12 kB brotli less;
# Green Tea helps many-core heaps, not a single-threaded page; the opt-out
# is due to go away in Go 1.27, see the notes); -buildvcs=false keeps the
# commit out of the module, so its hash (and the browser's cached copy)
# only changes when the code does. Together with the module's own diet:
# 0.99 MB brotli, under the 1.0 MB target.
set -euo pipefail
cd "$(dirname "$0")/.."

src="$(go env GOROOT)/lib/wasm/wasm_exec.js"
if ! cmp -s "$src" static/wasm_exec.js 2>/dev/null; then
	cp "$src" static/wasm_exec.js
fi

name=$(GOOS=js GOARCH=wasm go list -f '{{.Name}}' ./wasm 2>/dev/null || true)
if [[ "$name" != main ]]; then
	echo "wasm: ./wasm has no main package yet; static/keygen.wasm not built"
	exit 0
fi
# A toolchain that no longer knows the opt-out (Go 1.27 is expected to
# drop it) builds with its default GC instead of failing: ~12 kB more.
exp=nogreenteagc
if ! GOEXPERIMENT=$exp go env GOEXPERIMENT >/dev/null 2>&1; then
	echo "wasm: this Go has no GOEXPERIMENT=$exp; building with its default GC (module ~12 kB bigger)"
	exp=
fi
GOOS=js GOARCH=wasm GOEXPERIMENT=$exp go build -trimpath -buildvcs=false -ldflags="-s -w" \
	-gcflags=all=-l -o static/keygen.wasm ./wasm

# Compress only when the module changed (brotli -q 11 takes a while).
sum=$(sha256sum static/keygen.wasm | cut -d' ' -f1)
if [[ "$(cut -d' ' -f1 static/keygen.wasm.sha256 2>/dev/null || true)" == "$sum" && -s static/keygen.wasm.gz &&
	(-s static/keygen.wasm.br || ! -x "$(command -v brotli)") ]]; then
	exit 0
fi
rm -f static/keygen.wasm.sha256 static/keygen.wasm.gz static/keygen.wasm.br
gzip -9 -n -c static/keygen.wasm >static/keygen.wasm.gz.tmp && mv static/keygen.wasm.gz.tmp static/keygen.wasm.gz
if command -v brotli >/dev/null; then
	brotli -q 11 -f -o static/keygen.wasm.br.tmp static/keygen.wasm && mv static/keygen.wasm.br.tmp static/keygen.wasm.br
else
	echo "wasm: brotli not installed (make deps); serving gzip only"
fi
echo "$sum  keygen.wasm" >static/keygen.wasm.sha256
ls -l static/keygen.wasm static/keygen.wasm.gz static/keygen.wasm.br 2>/dev/null | awk '{print "wasm:", $5, $NF}'
