# motorpool's targets (`make help` lists them). Generators and the load generator are pinned
# Go tools (tools/go.mod), the spec's linters and the TypeScript client's tools npm packages
# (package.json and its lock); nothing is installed globally.
GO ?= go
PKGS := ./...
# What `motorpool version` reports for a binary built here (git describe of the checkout).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GENERATED := gen client sqlc clients/typescript/schema.d.ts .env.example README.md
# The npm tools need Node.js; without it the steps that use them say so and are passed over,
# unless CI is set, when they fail.
NPM := $(shell command -v npm 2>/dev/null)
define need_npm
	@if [ -z "$(NPM)" ]; then \
		if [ -n "$$CI" ]; then echo "npm not found (CI is set): install Node.js and npm" >&2; exit 1; fi; \
		echo "npm not found: $(1) passed over (install Node.js and npm)"; exit 0; fi
endef

.PHONY: help generate check-generated run test bench lint lint-spec check-clients loadtest

## help: list the targets and what they do
help:
	@awk '/^## [a-z-]+: / { t = $$2; sub(/:$$/, "", t); sub(/^## [a-z-]+: /, ""); printf "  %-16s %s\n", t, $$0; next } \
		/^## / { sub(/^## /, ""); printf "  %-16s %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

node_modules/.package-lock.json: package.json package-lock.json
	$(call need_npm,npm ci)
	@if [ -n "$(NPM)" ]; then npm ci --no-audit --no-fund --loglevel=error; fi

## generate: regenerate gen/ and client/ (oapi-codegen), sqlc/ (sqlc), the TypeScript client's
## types (clients/typescript/schema.d.ts, openapi-typescript), and .env.example and
## README.md's configuration table (between its settings markers) from the table of settings
## (settings_table*.go)
generate: node_modules/.package-lock.json
	$(GO) generate ./gen/ ./client/ ./db/
	$(call need_npm,clients/typescript/schema.d.ts)
	@if [ -n "$(NPM)" ]; then npx --no-install openapi-typescript openapi.yaml --output clients/typescript/schema.d.ts --silent; fi
	$(GO) build -o .settings.bin .
	./.settings.bin help env --format=dotenv > .env.example
	./.settings.bin help env --format=markdown > .settings.md
	awk 'FNR == NR { table = table $$0 "\n"; next } \
		/^<!-- settings:end -->$$/ { printf "%s", table; skip = 0 } \
		!skip { print } \
		/^<!-- settings:begin -->$$/ { skip = 1 }' .settings.md README.md > .settings.readme
	mv .settings.readme README.md
	rm -f .settings.bin .settings.md

## check-generated: fail if the committed generated code differs from what generate makes
check-generated: generate
	@if ! git diff --quiet -- $(GENERATED) || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
		echo "generated code is stale; run 'make generate' and commit:"; \
		git --no-pager diff --stat -- $(GENERATED); git ls-files --others --exclude-standard -- $(GENERATED); exit 1; \
	fi
	@echo "generated code is up to date"

## run: build ./bin/motorpool (VERSION from git) and serve the API on :8080 with the embedded
## SQLite store under ./data/ (exec'd: stopping make stops the server)
run:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/motorpool .
	exec ./bin/motorpool serve

## test: the whole suite with the race detector (PostgreSQL tests need 127.0.0.1:5432;
## with CI set they fail instead of skipping when it is missing), the load run's own
## tests (which build it, so it cannot rot; they start no service), the validation of
## docker-compose.yml and deploy/nginx (tools/composecheck; no Docker needed), and Swagger
## UI used in headless Chromium (tools/browsertest; skipped without chromium unless CI is set)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) -C tools vet ./loadtest/
	$(GO) -C tools test -race -count=1 ./loadtest/
	$(GO) -C tools vet ./composecheck/
	$(GO) -C tools test -race -count=1 ./composecheck/
	$(GO) -C tools vet ./browsertest/
# No -race for browsertest: its Go side is one goroutine driving a browser and a server,
# each in a process of its own, so the detector would find nothing and only slow it down.
	$(GO) -C tools test -count=1 ./browsertest/

## bench: handler-stack, cache-layer and rate-limiter benchmarks on each pairing of stores
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./api/ ./impl/

## loadtest: minutes of both cores: build the checkout, start it (PostgreSQL + a private
## Valkey, and embedded) beside a net/http floor, load each in interleaved rounds and print
## the table of docs/performance.md (not part of test; LOADTEST_FLAGS='-rounds 1 -duration 3s'
## for a short run, '-h' lists the flags)
loadtest:
	$(GO) -C tools run ./loadtest -repo $(CURDIR) $(LOADTEST_FLAGS)

## lint: formatting, vet, and the spec's linters (lint-spec)
lint: lint-spec
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) -C tools vet ./loadtest/
	$(GO) -C tools vet ./composecheck/
	$(GO) -C tools vet ./browsertest/

## lint-spec: openapi.yaml through @redocly/cli (recommended rules, redocly.yaml) and
## @stoplight/spectral-cli (spectral:oas, .spectral.yaml); any error or warning fails
lint-spec: node_modules/.package-lock.json
	$(call need_npm,lint-spec)
	@if [ -n "$(NPM)" ]; then npm run --silent lint; fi

## check-clients: the TypeScript client compiles under tsc --strict, is what openapi-typescript
## makes of the spec a running motorpool serves, and its example runs against that server; the
## Go example builds without the server's packages (clients/check.sh)
check-clients: node_modules/.package-lock.json
	$(call need_npm,check-clients)
	@if [ -n "$(NPM)" ]; then clients/check.sh; fi
