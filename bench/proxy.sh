#!/usr/bin/env bash
# The proxy benchmark (issue 6): meshward against nginx and HAProxy as mTLS-terminating proxies and
# against the app reached directly. Run after `make build`:   bash bench/proxy.sh
# It installs what it needs (nginx, haproxy, wrk from Debian; libssl-dev for the preload library),
# builds bench/preload/clientcert.c into bench/work/, runs bench/proxy/main.ts (compiled to
# dist/bench/proxy/main.js) pinned to core 0 (it pins each proxy itself; the 2-worker case is not pinned), and
# writes bench/results/proxy-latest.md plus a dated copy (to $BENCH_RESULTS_DIR instead when set: short trial runs).
# Knobs (environment): BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=50 BENCH_HANDSHAKE_CONNECTIONS=16
# BENCH_PACED_RATE=1000 BENCH_PACED_SECONDS=5 BENCH_IDLE_CONNECTIONS=1000 BENCH_ROTATIONS=20
# BENCH_ROTATION_CERTS=5 BENCH_RSA_CLIENT_KEY=ec-p256 BENCH_PORT_BASE=24000 BENCH_RESULTS_DIR=bench/results
# BENCH_MESHWARD_BIN=bin/meshward.js (measure another build against the same baselines).
# Parts and variants (issue 6: record the effect of each change; bench/effects.sh sets these):
#   BENCH_CASES=all            or a list of keepalive,logging,2workers,handshakes,paced,idle,rotations: only those
#                              parts run and only their rows are reported (idle RSS is always read).
#   BENCH_MESHWARD_VARIANTS=   "label=BIN[,label=BIN...]": other meshward builds (BIN = a bin/meshward.js,
#                              optionally "NODE:BIN" to run it with another node binary), each a column
#                              "meshward (label)", measured in the keep-alive (1 worker) and handshake cases only.
#   BENCH_NODE24=1             the variant "current on Node 24": BENCH_MESHWARD_BIN run by Node
#                              $BENCH_NODE24_VERSION (default 24.21.0), installed from npm's `node` package
#                              into bench/work/node24 on first use (scripts/node24.sh); 0 leaves it out.
#   BENCH_RESULTS_NAME=proxy   results file prefix: <name>-<UTC stamp>.md; only "proxy" also writes proxy-latest.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/bench/work"
PIDS="$WORK/proxy-pids"
mkdir -p "$WORK" "$ROOT/bench/results"

say() { printf '[proxy.sh] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to install packages: $*"; return 1; fi
}

# Installs the Debian packages that are missing (apt-get update at most once per run).
install_packages() {
  local missing=() updated=0
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v taskset >/dev/null || missing+=(util-linux)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq && updated=1
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
    # nginx-light is a transitional package on newer Debian: fall back to nginx.
    missing=("${missing[@]/nginx-light/nginx}")
    [ "$updated" = 1 ] || as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Stops whatever the run started, even if the Node side died without cleaning up. Only pids that the
# run recorded, and only while they still run one of the programs it starts (a pid may have been reused).
cleanup() {
  local rc=$?
  # The runner: `timeout` leads its own process group (node and what node runs in the foreground);
  # TERM lets node stop its servers itself, then the group is killed in case it could not.
  if [ -n "${RUNNER_PID:-}" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$RUNNER_PID" 2>/dev/null || kill -KILL "$RUNNER_PID" 2>/dev/null || true
  fi
  if [ -f "$PIDS" ]; then
    while read -r pid name; do
      [ -n "$pid" ] || continue
      if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq 'nginx|haproxy|meshward|wrk'; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$PIDS"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NODE24_VERSION="${BENCH_NODE24_VERSION:-24.21.0}"
NODE24_PREFIX="$WORK/node24"

# Installs Node $NODE24_VERSION into bench/work/node24 (not the repo's node_modules) unless it is there,
# and prints its path (scripts/node24.sh, shared with `make test-node24`).
install_node24() {
  bash "$ROOT/scripts/node24.sh" "$NODE24_PREFIX" "$NODE24_VERSION"
}

# BENCH_NODE24=1: the current build on Node 24 joins the variants.
add_node24_variant() {
  local node24 bin
  node24="$(install_node24)" || return 1
  bin="$(cd "$ROOT" && realpath -m "${BENCH_MESHWARD_BIN:-bin/meshward.js}")"
  say "variant \"current on Node 24\": $node24 ($("$node24" --version)) running $bin"
  export BENCH_MESHWARD_VARIANTS="${BENCH_MESHWARD_VARIANTS:+$BENCH_MESHWARD_VARIANTS,}current on Node 24=$node24:$bin"
}

install_packages
# Node 24 is the production runtime and Node 20 what CI runs: both are measured unless BENCH_NODE24=0.
if [ "${BENCH_NODE24:-1}" = 1 ]; then
  add_node24_variant || say "Node 24 could not be installed: measuring Node $(node --version | tr -d v) only"
fi

say "building the LD_PRELOAD client-certificate library"
gcc -shared -fPIC -O2 -Wall -Wextra -o "$WORK/clientcert.so" "$ROOT/bench/preload/clientcert.c" -ldl -lssl -lcrypto

if [ ! -f "$ROOT/dist/bench/proxy/main.js" ] || [ ! -f "$ROOT/dist/src/cli/main.js" ]; then
  say "dist/ is missing: building (make build)"
  (cd "$ROOT" && node_modules/.bin/tsc -p tsconfig.json) || say "tsc reported errors (it still emits JavaScript)"
fi

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "running (about 7 minutes with every part and no variants; the whole run is bounded at 15)"
cd "$ROOT"
timeout -s TERM 15m taskset -c 0 node dist/bench/proxy/main.js &
RUNNER_PID=$!
wait "$RUNNER_PID"
