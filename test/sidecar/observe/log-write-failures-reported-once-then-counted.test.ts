// The log buffer (src/sidecar/observe/line-buffer.ts) on a descriptor whose writes fail for a reason other
// than a closed reader: it says so on stderr once, then at most one line per interval with the count of lines
// lost (never one line per failed chunk), and one line when writes succeed again. Real descriptors in child
// processes: /dev/full (every write ENOSPC), and a file under `ulimit -f` (EFBIG once it is full; writable
// again after it is truncated). The bound on stderr is derived from the time the child ran, not assumed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../support/temp-dir.js';

const LINE_BUFFER = fileURLToPath(new URL('../../../src/sidecar/observe/line-buffer.js', import.meta.url));
const dir = tempDir();
after(() => dir.cleanup());

/** Runs `body` (an ES module with LineBuffer imported) through `sh -c PREFIX exec node`; stdout, stderr, exit code. */
function runChild(name: string, body: string, shellPrefix = '', closeStdout = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = dir.path(`${name}.mjs`);
  writeFileSync(script, `import fs from 'node:fs';\nimport { LineBuffer } from ${JSON.stringify(LINE_BUFFER)};\n${body}`);
  const child = spawn('sh', ['-c', `${shellPrefix} exec "$0" "$1"`, process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  if (closeStdout) child.stdout.destroy(); // the reader goes away: the child's writes get EPIPE
  else child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The count each report line gives: the first failure's, and each later one's since the last report. */
function lostCounts(stderr: string): { first: number; later: number[]; recovered?: number } {
  const lines = stderr.split('\n').filter((l) => l !== '');
  const first = /^meshward: writing log lines failed: .*; (\d+) lines lost, still trying/.exec(lines[0] ?? '');
  assert.ok(first, `the first line says the write failed and what was lost: ${lines[0]}`);
  const later: number[] = [];
  let recovered: number | undefined;
  for (const l of lines.slice(1)) {
    const still = /^meshward: writing log lines still fails: .*; (\d+) lines lost since the last report/.exec(l);
    const back = /^meshward: writing log lines works again; (\d+) lines lost since /.exec(l);
    assert.ok(still || back, `an expected report line: ${l}`);
    if (still) later.push(Number(still[1]));
    else recovered = Number(back![1]);
  }
  return { first: Number(first[1]), later, ...(recovered !== undefined ? { recovered } : {}) };
}

it('/dev/full (ENOSPC on every write): a first line, then bounded counts that add up to every line logged', async () => {
  // 20 000 lines, 64 characters a chunk: thousands of failed writes over many event-loop turns.
  const r = await runChild('dev-full', `
const out = new LineBuffer(fs.openSync('/dev/full', 'w'), { chunk: 64, reportIntervalMs: 200 });
const started = Date.now();
for (let i = 0; i < 20000; i++) {
  out.write('{"level":30,"msg":"line ' + i + '"}\\n');
  if (i % 50 === 49) await out.flush();
}
await out.flush();
console.log(JSON.stringify({ elapsedMs: Date.now() - started }));
`);
  assert.equal(r.code, 0, r.stderr);
  const { elapsedMs } = JSON.parse(r.stdout) as { elapsedMs: number };
  assert.match(r.stderr, /ENOSPC/);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  // One first line, at most one per 200 ms interval after it, one at exit for the rest.
  assert.ok(lines.length <= 2 + Math.ceil(elapsedMs / 200), `${lines.length} stderr lines in ${elapsedMs} ms`);
  assert.ok(lines.length < 2000, 'far fewer lines than failed writes');
  const counts = lostCounts(r.stderr);
  assert.equal(counts.recovered, undefined, 'no write ever succeeded');
  assert.equal(counts.first + counts.later.reduce((a, b) => a + b, 0), 20_000, 'every line is counted as lost, once');
});

it('with the default interval a failing stretch is one first line and one count at exit, whatever its length', async () => {
  const r = await runChild('dev-full-default', `
const out = new LineBuffer(fs.openSync('/dev/full', 'w'), { chunk: 64 });
const started = Date.now();
for (let i = 0; i < 5000; i++) {
  out.write('line ' + i + '\\n');
  if (i % 20 === 19) await out.flush();
}
console.log(JSON.stringify({ elapsedMs: Date.now() - started }));
`);
  assert.equal(r.code, 0, r.stderr);
  const { elapsedMs } = JSON.parse(r.stdout) as { elapsedMs: number };
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length <= 2 + Math.ceil(elapsedMs / 10_000), `${lines.length} stderr lines in ${elapsedMs} ms`);
  const counts = lostCounts(r.stderr);
  assert.equal(counts.first + counts.later.reduce((a, b) => a + b, 0), 5000);
});

it('a file past its size limit (EFBIG): reported, then one line when writes work again, with the exact count lost', async () => {
  const file = dir.path('limited.log');
  // ulimit -f 8: 4096 bytes; SIGXFSZ ignored so the write fails with EFBIG instead of killing the child.
  const r = await runChild('efbig', `
const file = ${JSON.stringify(file)};
const fd = fs.openSync(file, 'a');
let failed = false;
const out = new LineBuffer(fd, { chunk: 200, reportIntervalMs: 600_000, report: (l) => { failed ||= l.includes('failed'); process.stderr.write(l); } });
let attempted = 0;
while (!failed && attempted < 10000) {
  out.write('line ' + attempted++ + ' ' + 'x'.repeat(40) + '\\n');
  if (attempted % 5 === 0) await out.flush();
}
await out.flush();
for (let k = 0; k < 50; k++) {
  out.write('while failing ' + k + '\\n');
  attempted++;
  await out.flush();
}
const written = fs.readFileSync(file, 'utf8').split('\\n').length - 1;
fs.ftruncateSync(fd, 0);
out.write('after 1\\n');
out.write('after 2\\n');
await out.flush();
console.log(JSON.stringify({ attempted, written }));
`, "trap '' XFSZ; ulimit -f 8;");
  assert.equal(r.code, 0, r.stderr);
  const { attempted, written } = JSON.parse(r.stdout) as { attempted: number; written: number };
  assert.match(r.stderr, /EFBIG|too large/i);
  const counts = lostCounts(r.stderr);
  assert.equal(counts.recovered, attempted - written, 'the recovery line gives every line lost (a line cut short counts)');
  assert.equal(r.stderr.split('\n').filter((l) => l !== '').length, 2, 'first failure, then recovery');
  assert.equal(readFileSync(file, 'utf8'), 'after 1\nafter 2\n');
});

it('a closed reader (EPIPE) is said once, and nothing more is written or reported', async () => {
  const r = await runChild('epipe', `
const out = new LineBuffer(1, { chunk: 64, reportIntervalMs: 1 });
await new Promise((resolve) => setTimeout(resolve, 200));
for (let i = 0; i < 2000; i++) {
  out.write('line ' + i + '\\n');
  if (i % 20 === 19) await out.flush();
}
`, '', true);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^meshward: writing log lines failed: .*EPIPE.*; no more log lines will be written$/);
});
