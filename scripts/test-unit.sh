#!/usr/bin/env bash
# Unit and integration tests of every package but the e2e suite. Packages
# with concurrency (store, mail outbox, handlers, ordering) run with -race;
# the rest without, to keep the run short on two cores. Folders that do not
# exist yet are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
module=$(go list -m)
race_dirs=(store internal/mail handlers internal/ordering)

race=()
for d in "${race_dirs[@]}"; do
	[[ -d $d ]] && race+=("./$d/...")
done
exclude="^${module}/e2e(/|$)"
for d in "${race_dirs[@]}"; do
	exclude+="|^${module}/${d}(/|$)"
done
mapfile -t plain < <(go list -e ./... | grep -Ev "$exclude" || true)

status=0
if ((${#race[@]})); then
	echo "--- go test -race ${race[*]}"
	go test -race -count=1 -timeout 5m "${race[@]}" || status=1
fi
if ((${#plain[@]})); then
	echo "--- go test (${#plain[@]} packages)"
	go test -count=1 -timeout 5m "${plain[@]}" || status=1
fi
exit $status
