#!/usr/bin/env bash
# Builds static/keygen.wasm from ./wasm (when it has a main package) and
# copies Go's wasm_exec.js next to it. Both are embedded into the binary
# by static/embed.go, so this runs before any build of cmd/certdesk.
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
GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o static/keygen.wasm ./wasm
