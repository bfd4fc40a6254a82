#!/usr/bin/env bash
# `make demo` (after `make build`): runs the compiled demo, scripts/demo.ts. Extra arguments go to it
# (e.g. --dir /tmp/meshward-demo). exec, so Ctrl-C and SIGTERM reach the demo, which stops what it started.
set -euo pipefail
demo="$(cd "$(dirname "$0")/.." && pwd)/dist/scripts/demo.js"
if [ ! -f "$demo" ]; then
  echo "demo: $demo is missing: run make build first (or make demo, which builds)" >&2
  exit 1
fi
exec node "$demo" "$@"
