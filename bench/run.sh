#!/usr/bin/env bash
# `make bench` (after `make build`): runs the benchmarks and writes their tables to bench/results/latest.md.
# Each benchmark is a compiled script under dist/bench/ that prints a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/latest.md
tmp="$out.tmp"
{
  echo "# meshward benchmarks"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, node $(node --version), $(openssl version | cut -d' ' -f1-2)"
  echo
  node dist/bench/issuance.js
} > "$tmp"
mv "$tmp" "$out"
cat "$out"
