#!/usr/bin/env bash
# `make bench` (after `make build`): every benchmark in one run, tables to bench/results/latest.md, and a
# dated copy beside the earlier ones. Parts: CA issuance vs raw signing (in process and through gRPC, SQLite
# and PostgreSQL, Sign latency at 50 clients), credential checks
# (API key, HMAC, JWT: src/auth on one core), the same credentials through a sidecar as ratios to
# mTLS-only (bench/credentials-proxy.ts) and the JavaScript of that credential step alone (bench/credential-step.ts), and the proxy
# comparison (meshward vs nginx vs HAProxy; bench/proxy.sh installs nginx, haproxy and wrk if missing), and
# revocation latency (cert revoke → a sidecar refuses the caller, real processes).
# BENCH_PARTS limits the run, e.g. BENCH_PARTS="issuance" skips the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
parts="${BENCH_PARTS:-issuance auth credentials revocation proxy}"
out=bench/results/latest.md
tmp="$out.tmp"
{
  echo "# meshward benchmarks"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, node $(node --version), $(openssl version | cut -d' ' -f1-2)"
  echo
  case " $parts " in *" issuance "*) node dist/bench/issuance.js; echo ;; esac
  case " $parts " in *" auth "*) node --expose-gc dist/bench/auth-checks.js; echo ;; esac
  case " $parts " in *" credentials "*) node dist/bench/credentials-proxy.js; echo; node dist/bench/credential-step.js; echo ;; esac
  case " $parts " in *" revocation "*) node dist/bench/revocation.js; echo ;; esac
  case " $parts " in *" proxy "*)
    bash bench/proxy.sh >&2
    cat bench/results/proxy-latest.md ;;
  esac
} > "$tmp"
mv "$tmp" "$out"
cp "$out" "bench/results/$(date -u +%Y-%m-%d-%H%M).md"
cat "$out"
