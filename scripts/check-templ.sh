#!/usr/bin/env bash
# Fails when a committed *_templ.go is missing or out of date with its
# .templ source. `templ generate -check` regenerates in memory and writes
# nothing, so it is safe in a work tree others are editing; in CI's clean
# clone it catches both a stale and an uncommitted generated file.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! out=$(go tool templ generate -check 2>&1); then
	echo "$out" >&2
	echo "templ: generated files are not up to date: run make generate and commit the *_templ.go files" >&2
	exit 1
fi
# Outside CI, point out generated files not yet added to git: CI's clean
# clone will not have them.
untracked=$(git ls-files --others --exclude-standard -- '*_templ.go')
if [[ -n $untracked ]]; then
	if [[ ${CI:-} == true ]]; then
		echo "templ: untracked generated files:" >&2; echo "$untracked" >&2; exit 1
	fi
	echo "templ: warning: not in git yet (CI will miss them):" >&2
	echo "$untracked" >&2
fi
