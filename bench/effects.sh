#!/usr/bin/env bash
# Records the effect of changes (issue 6, item 3: "Record the effect of each change in bench/results/").
#   bash bench/effects.sh REV [REV...]        e.g. bash bench/effects.sh 07b15a1 HEAD
# Each git revision is checked out as a detached worktree in bench/work/builds/<short rev> (kept for the
# next run: a revision never changes, so its build is reused), given the repo's node_modules through a
# symlink and compiled with the repo's tsc. Then the proxy benchmark (bench/proxy.sh) runs once with the
# current tree (compiled first) as meshward and every revision as a variant column
# "meshward (<short rev> <first words of its subject>)", in the keep-alive and full-handshake parts only,
# all in the same interleaved rounds against the same nginx and HAProxy. The report goes to
# bench/results/effects-<UTC date-time>.md (or $BENCH_RESULTS_DIR); bench/results/proxy-latest.md is
# left alone. Knobs: those of bench/proxy.sh (BENCH_ROUNDS, BENCH_SECONDS, ...; BENCH_CASES defaults to
# keepalive,handshakes here), and BENCH_NODE24=1 to add the current tree on Node 24 as one more variant.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILDS="$ROOT/bench/work/builds"
TSC="$ROOT/node_modules/.bin/tsc"

say() { printf '[effects.sh] %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

# "07b15a1 HTTP frontend one upstream-failure": the short rev and the first words of the subject, with
# only characters that are safe in BENCH_MESHWARD_VARIANTS (no ',' '=' ':') and in a table header.
label_of() {
  local short="$1" subject
  subject="$(git -C "$ROOT" log -1 --format=%s "$short" | tr -c 'A-Za-z0-9 ._-' ' ' | tr -s ' ')"
  subject="$(printf '%s' "$subject" | cut -d' ' -f1-4 | sed 's/^ *//; s/ *$//')"
  printf '%s %s' "$short" "$subject" | cut -c1-48 | sed 's/ *$//'
}

# A detached worktree of the revision in $BUILDS/<short>, reused when it is already there.
worktree_of() {
  local full="$1" dir="$2"
  if [ -e "$dir" ]; then
    [ "$(git -C "$dir" rev-parse HEAD 2>/dev/null)" = "$full" ] || die "$dir exists but is not a worktree at $full: remove it"
    return 0
  fi
  mkdir -p "$BUILDS"
  git -C "$ROOT" worktree add --detach "$dir" "$full" >&2
}

# Compiles a worktree once (a stamp marks a finished build). tsc exits non-zero on type errors but still
# emits: an old revision may not type-check against today's node_modules, and it runs all the same.
build_of() {
  local dir="$1"
  [ -e "$dir/node_modules" ] || ln -s "$ROOT/node_modules" "$dir/node_modules"
  if [ -f "$dir/dist/.effects-built" ]; then return 0; fi
  say "compiling $dir"
  timeout 5m "$TSC" -p "$dir" >"$dir/tsc.log" 2>&1 || say "tsc reported errors for $dir (see $dir/tsc.log; it still emits JavaScript)"
  [ -f "$dir/dist/src/cli/main.js" ] || die "no $dir/dist/src/cli/main.js after tsc: see $dir/tsc.log"
  touch "$dir/dist/.effects-built"
}

main() {
  [ "$#" -ge 1 ] || die "usage: bash bench/effects.sh REV [REV...]   (e.g. 07b15a1 HEAD)"
  cd "$ROOT"
  [ -x "$TSC" ] || die "$TSC is missing: run make install first"
  # Worktrees whose directories were deleted by hand are forgotten; the ones in $BUILDS are kept for reuse.
  git worktree prune

  local variants=() seen=" " rev full short dir
  for rev in "$@"; do
    full="$(git rev-parse --verify --quiet "$rev^{commit}")" || die "not a revision: $rev"
    short="$(git rev-parse --short=7 "$full")"
    case "$seen" in *" $short "*) continue ;; esac
    seen="$seen$short "
    dir="$BUILDS/$short"
    worktree_of "$full" "$dir"
    build_of "$dir"
    variants+=("$(label_of "$short")=$dir/bin/meshward.js")
  done

  # The current tree (with whatever is not committed yet) is the main meshward: compile it as it is now.
  say "compiling the current tree"
  timeout 5m "$TSC" -p "$ROOT/tsconfig.json" >&2 || say "tsc reported errors for the current tree (it still emits JavaScript)"

  local joined
  joined="$(IFS=,; printf '%s' "${variants[*]}")"
  say "variants: $joined"
  BENCH_NODE24="${BENCH_NODE24:-0}" BENCH_CASES="${BENCH_CASES:-keepalive,handshakes}" BENCH_RESULTS_NAME=effects \
    BENCH_MESHWARD_VARIANTS="${BENCH_MESHWARD_VARIANTS:+$BENCH_MESHWARD_VARIANTS,}$joined" \
    bash "$ROOT/bench/proxy.sh"
}

main "$@"
