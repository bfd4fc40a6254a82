# meshward: the commands a new user and CI run. `make demo` and `make test` are the front door.
NODE ?= node
TSC := node_modules/.bin/tsc
# Test files run one per process (node --test); integration tests start real servers on 127.0.0.1.
TEST_FILES = $(shell find dist/test -name '*.test.js' 2>/dev/null | sort)

.PHONY: install build test demo bench lint clean

install:
	npm ci --no-audit --no-fund

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

build: node_modules/.package-lock.json
	rm -rf dist
	$(TSC) -p tsconfig.json

test: build
	$(NODE) --test --test-reporter=spec $(shell find dist/test -name '*.test.js' | sort)

demo: build
	bash scripts/demo.sh

bench: build
	bash bench/run.sh

lint: node_modules/.package-lock.json
	$(TSC) -p tsconfig.json --noEmit

clean:
	rm -rf dist
