# motorpool: the seven targets. Generators and the load generator are pinned Go tools
# (tools/go.mod); nothing is installed globally.
GO ?= go
PKGS := ./...
GENERATED := gen sqlc .env.example README.md

.PHONY: generate check-generated run test bench lint loadtest

## generate: regenerate gen/ (oapi-codegen) and sqlc/ (sqlc) from openapi.yaml and db/, and
## .env.example and README.md's configuration table (between its settings markers) from the
## table of settings (settings_table*.go)
generate:
	$(GO) generate ./gen/ ./db/
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

## run: serve the API on :8080 with the embedded SQLite store under ./data/
run:
	$(GO) run . serve

## test: the whole suite with the race detector (PostgreSQL tests need 127.0.0.1:5432;
## with CI set they fail instead of skipping when it is missing), and the load run's own
## tests (which build it, so it cannot rot; they start no service)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) -C tools vet ./loadtest/
	$(GO) -C tools test -race -count=1 ./loadtest/

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
