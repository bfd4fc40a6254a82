# meshward: the commands a new user and CI run. `make demo` and `make test` are the front door.
NODE ?= node
TSC := node_modules/.bin/tsc
# Test files run one per process (node --test); integration tests start real servers on 127.0.0.1.
TEST_FILES = $(shell find dist/test -name '*.test.js' 2>/dev/null | sort)

.PHONY: install build test test-node24 demo bench lint clean deploy-check postgres

install:
	npm ci --no-audit --no-fund

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

build: node_modules/.package-lock.json
	rm -rf dist
	$(TSC) -p tsconfig.json

# Renders deploy/kubernetes (kubectl kustomize when installed, the repo's own renderer always) and
# validates every object offline against the pinned Kubernetes schemas in deploy/check/schemas/.
deploy-check: node_modules/.package-lock.json
	$(NODE) deploy/check/deploy-check.mjs

test: build deploy-check
	$(NODE) --test --test-concurrency=2 --test-reporter=spec $(shell find dist/test -name '*.test.js' | sort)

# The unit suite on Node 24 (the production runtime), in a copy of the tree with its own node_modules.
test-node24: node_modules/.package-lock.json
	bash scripts/test-node24.sh

demo: build
	bash scripts/demo.sh

# A throwaway PostgreSQL to try the CA on (prints the DSN; Ctrl-C removes it). docs/ca-operations.md.
postgres: build
	$(NODE) dist/scripts/throwaway-postgres.js

bench: build
	bash bench/run.sh

lint: node_modules/.package-lock.json
	$(TSC) -p tsconfig.json --noEmit

clean:
	rm -rf dist .cache
