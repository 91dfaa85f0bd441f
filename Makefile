# motorpool's targets (`make help` lists them). Generators and the load generator are pinned
# Go tools (tools/go.mod); nothing is installed globally.
GO ?= go
PKGS := ./...
# What `motorpool version` reports for a binary built here (git describe of the checkout).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help generate check-generated run test bench lint loadtest

## help: list the targets and what they do
help:
	@awk '/^## [a-z-]+: / { t = $$2; sub(/:$$/, "", t); sub(/^## [a-z-]+: /, ""); printf "  %-16s %s\n", t, $$0; next } \
		/^## / { sub(/^## /, ""); printf "  %-16s %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

## generate: regenerate gen/ and client/ (oapi-codegen) and sqlc/ (sqlc) from openapi.yaml and db/
generate:
	$(GO) generate ./gen/ ./client/ ./db/

## check-generated: fail if the committed generated code differs from what generate makes
check-generated: generate
	@if ! git diff --quiet -- gen client sqlc || [ -n "$$(git ls-files --others --exclude-standard -- gen client sqlc)" ]; then \
		echo "generated code is stale; run 'make generate' and commit:"; \
		git --no-pager diff --stat -- gen client sqlc; git ls-files --others --exclude-standard -- gen client sqlc; exit 1; \
	fi
	@echo "generated code is up to date"

## run: build ./bin/motorpool (VERSION from git) and serve the API on :8080 with the embedded
## SQLite store under ./data/ (exec'd: stopping make stops the server)
run:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/motorpool .
	exec ./bin/motorpool serve

## test: the whole suite with the race detector (PostgreSQL tests need 127.0.0.1:5432;
## with CI set they fail instead of skipping when it is missing), the load run's own
## tests (which build it, so it cannot rot; they start no service), and the validation of
## docker-compose.yml and deploy/nginx (tools/composecheck; no Docker needed)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) -C tools vet ./loadtest/
	$(GO) -C tools test -race -count=1 ./loadtest/
	$(GO) -C tools vet ./composecheck/
	$(GO) -C tools test -race -count=1 ./composecheck/

## bench: handler-stack, cache-layer and rate-limiter benchmarks on each pairing of stores
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./api/ ./impl/

## loadtest: minutes of both cores: build the checkout, start it (PostgreSQL + a private
## Valkey, and embedded) beside a net/http floor, load each in interleaved rounds and print
## the table of docs/performance.md (not part of test; LOADTEST_FLAGS='-rounds 1 -duration 3s'
## for a short run, '-h' lists the flags)
loadtest:
	$(GO) -C tools run ./loadtest -repo $(CURDIR) $(LOADTEST_FLAGS)

## lint: formatting and vet
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) -C tools vet ./loadtest/
	$(GO) -C tools vet ./composecheck/
