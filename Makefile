# certdesk: build, run and test. GNU make.
#
#   make run       build the KeyGen WebAssembly and run the portal in dev mode on :8080
#   make test      everything CI checks: deps, vet, gofmt, templ, unit tests, e2e suite
#   make deps      install what the tests need (Chromium, openssl, brotli, Playwright driver, axe-core)
#   make build     bin/certdesk
#   make fmt       gofmt -w (generated *_templ.go aside)
#   make generate  templ generate
#   make bench     Go benchmarks (scripts/bench.sh; BENCHTIME=1s)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := build

GO ?= go
BENCHTIME ?= 1s
export DEBIAN_FRONTEND := noninteractive
export PLAYWRIGHT_NODEJS_PATH ?= /usr/bin/node

.PHONY: run build wasm deps test vet fmt-check templ-check unit e2e bench fmt generate clean

## run: the portal in dev mode with demo users (their passwords are printed at start)
run: wasm
	$(GO) run ./cmd/certdesk serve --dev --addr 127.0.0.1:8080 --base-url http://localhost:8080 --data-dir ./data

## build: bin/certdesk with the KeyGen module embedded
build: wasm
	$(GO) build -trimpath -o bin/certdesk ./cmd/certdesk

## wasm: static/keygen.wasm and static/wasm_exec.js (embedded by static/embed.go)
wasm:
	@scripts/wasm.sh

deps:
	@scripts/deps.sh

## test: what CI runs (.ci/run); prints the total time, pass or fail
test:
	@start=$$(date +%s); \
	trap 'echo "make test: $$(( $$(date +%s) - start )) s in all"' EXIT; \
	$(MAKE) --no-print-directory deps wasm vet fmt-check templ-check unit e2e; \
	echo "make test: PASS"

vet:
	@echo "--- go vet ./..."
	@$(GO) vet ./...

fmt-check:
	@echo "--- gofmt check"
	@scripts/check-gofmt.sh

templ-check:
	@echo "--- templ generate -check"
	@scripts/check-templ.sh

unit: wasm
	@scripts/test-unit.sh

e2e: wasm
	@echo "--- go test ./e2e/..."
	@$(GO) test ./e2e/... -count=1 -timeout 8m

bench: wasm
	@scripts/bench.sh $(BENCHTIME)

fmt:
	@git ls-files -co --exclude-standard -- '*.go' ':!:*_templ.go' | while read -r f; do [[ -f $$f ]] && echo "$$f"; done | xargs -r gofmt -l -w

generate:
	$(GO) tool templ generate

clean:
	rm -rf bin static/keygen.wasm static/wasm_exec.js e2e/artifacts
