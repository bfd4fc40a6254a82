// The replay cache's longest call while it grows: REPLAY_ENTRIES (default 6M) fresh signatures remembered
// within one second of cache time (all live, so the table doubles from 1024 to 2^24 slots), each call timed
// on its own. Prints the longest call, the mean, the 99.99th percentile and the calls over 1 ms and 10 ms.
// Each run is a child process of its own (a fresh heap, the same allocations). BENCH_BASELINE_ROOT=DIR
// (another built checkout, e.g. of main) runs DIR's build too, alternating with this one run by run, and
// prints each pair's ratio (this ÷ baseline): the machine is shared, so only ratios inside a run mean much.
// Usage: [BENCH_BASELINE_ROOT=DIR] [BENCH_ROUNDS=3] [REPLAY_ENTRIES=6000000] node dist/bench/replay-growth.js
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ENTRIES = Number(process.env.REPLAY_ENTRIES ?? 6_000_000);
const MODULE = 'dist/src/auth/replay-cache.js';

interface Run {
  maxMs: number;
  meanUs: number;
  p9999Us: number;
  over1ms: number;
  over10ms: number;
  capacity: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- two builds are loaded by path: their types are not this file's */
async function child(root: string): Promise<void> {
  const { ReplayCache } = (await import(pathToFileURL(join(root, MODULE)).href)) as any;
  const cache = new ReplayCache(300_000);
  // Replay keys shaped like the verifier's (key id, ':', 44 characters of base64 signature): a random prefix
  // and a counter, so no key list sits in memory.
  const prefix = `3kTz9QpLm2Xa:${randomBytes(24).toString('base64').slice(0, 32)}`;
  const now = 1_733_300_000_000;
  const createdS = now / 1000;
  // Times in µs, bucketed by 1 µs up to 100 ms (for the percentile without keeping 6M numbers).
  const buckets = new Uint32Array(100_001);
  let max = 0;
  let sum = 0;
  let over1 = 0;
  let over10 = 0;
  for (let i = 0; i < ENTRIES; i++) {
    const key = prefix + i.toString(36).padStart(12, '0');
    const t0 = performance.now();
    cache.remember(key, now, createdS);
    const ms = performance.now() - t0;
    sum += ms;
    if (ms > max) max = ms;
    if (ms > 1) over1++;
    if (ms > 10) over10++;
    buckets[Math.min(100_000, Math.floor(ms * 1000))]!++;
  }
  let seen = 0;
  let p9999 = 0;
  for (let us = 0; us < buckets.length; us++) {
    seen += buckets[us]!;
    if (seen >= ENTRIES * 0.9999) {
      p9999 = us;
      break;
    }
  }
  const run: Run = { maxMs: max, meanUs: (sum / ENTRIES) * 1000, p9999Us: p9999, over1ms: over1, over10ms: over10, capacity: cache.capacity };
  process.stdout.write(JSON.stringify(run));
}

function measure(root: string): Run {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', root], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`run in ${root} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Run;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!);
  const baseline = process.env.BENCH_BASELINE_ROOT;
  const builds = baseline ? [{ label: 'baseline', root: baseline }, { label: 'this build', root: ROOT }] : [{ label: 'this build', root: ROOT }];
  const lines = [
    `## Replay cache growth: ${ENTRIES.toLocaleString('en-US')} fresh signatures, every call timed${baseline ? ` (baseline: ${baseline}; builds alternate run by run)` : ''}`,
    '',
    '| round | build | longest call (ms) | mean (µs) | p99.99 (µs) | calls > 1 ms | calls > 10 ms | slots at the end |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const ratios: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate which build goes first, so neither always runs on a machine warmed (or loaded) by the other.
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    const runs = new Map<string, Run>();
    for (const b of order) {
      const r = measure(b.root);
      runs.set(b.label, r);
      lines.push(`| ${round} | ${b.label} | ${r.maxMs.toFixed(2)} | ${r.meanUs.toFixed(3)} | ${r.p9999Us} | ${r.over1ms} | ${r.over10ms} | ${r.capacity.toLocaleString('en-US')} |`);
    }
    const a = runs.get('baseline');
    const b = runs.get('this build')!;
    if (a) ratios.push(`| ${round} | ${(b.maxMs / a.maxMs).toFixed(3)} | ${(b.meanUs / a.meanUs).toFixed(3)} |`);
  }
  if (ratios.length > 0) lines.push('', '| round | longest call, this ÷ baseline | mean, this ÷ baseline |', '|---|---|---|', ...ratios);
  console.log(lines.join('\n'));
}

await main();
