#!/usr/bin/env bash
# Fails listing the Go files gofmt would change (generated *_templ.go aside).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.go' ':!:*_templ.go' | while read -r f; do [[ -f $f ]] && echo "$f"; done)
((${#files[@]})) || exit 0
bad=$(gofmt -l "${files[@]}")
if [[ -n $bad ]]; then
	echo "gofmt: these files need formatting (run make fmt):" >&2
	echo "$bad" >&2
	exit 1
fi
