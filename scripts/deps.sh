#!/usr/bin/env bash
# Installs what the tests need, only when it is missing, without prompts:
#   Debian packages: chromium, openssl, brotli (apt-get, as root or via sudo)
#   the Playwright driver for playwright-go in .cache/playwright (npm registry,
#     the machine's Node.js, never a browser download)
#   axe-core in .cache/npm (npm registry)
# Run from anywhere; paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PLAYWRIGHT_NODEJS_PATH="${PLAYWRIGHT_NODEJS_PATH:-/usr/bin/node}"

# binary -> Debian package
declare -A pkgs=([/usr/bin/chromium]=chromium [openssl]=openssl [brotli]=brotli)
missing=()
for bin in "${!pkgs[@]}"; do
	if ! command -v "$bin" >/dev/null 2>&1; then
		missing+=("${pkgs[$bin]}")
	fi
done
if ((${#missing[@]})); then
	sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo -n)
	fi
	echo "deps: apt-get install ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for tool in node npm; do
	command -v "$tool" >/dev/null || { echo "deps: $tool is missing (the machine's Node.js is expected)" >&2; exit 1; }
done

# Playwright driver: a fast no-op when the right version is there.
go run ./scripts/playwright-install -q -dir .cache/playwright

# axe-core for accessibility checks in the e2e suite.
if [[ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]]; then
	echo "deps: npm install axe-core@4"
	npm install --prefix .cache/npm --no-audit --no-fund --loglevel=error axe-core@4 >/dev/null
fi
