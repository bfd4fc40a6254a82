// The log buffer (src/sidecar/observe/line-buffer.ts) loses nothing and keeps the order when stdout is a
// pipe nobody reads for a while (the pipe fills, writes wait or come back partial and are continued), and
// when the process leaves through process.exit() with lines still buffered (written synchronously on
// 'exit'), pino's lines and hand-built request lines interleaved as they were logged. (A chunk already
// handed to the thread pool when 'exit' comes cannot be waited for: SIGTERM/SIGINT flush asynchronously
// and wait for it, see log-lines-buffered-are-written-on-sigterm.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoggingChild } from '../../support/log-child.js';

/** Logs `n` request lines with a pino line every 100th, in one event-loop turn per 500. */
const LOG_LINES = `
const logger = createLogger('info');
const rl = requestLogFor(logger, 'info');
const part = rl.connectionPart('spiffe://example.org/ns/shop/sa/frontend', '127.0.0.1:5000');
async function logLines(n) {
  for (let i = 0; i < n; i++) {
    rl.write(part, 'GET', '/orders/' + i + '/' + 'x'.repeat(200), 'routes[0]', 200, 'allow', 0.5);
    if (i % 100 === 99) logger.warn({ event: 'marker', after: i }, 'marker');
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
}
`;

function checkOrder(stdout: string, n: number): void {
  const lines = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; path?: string; after?: number });
  const expected: string[] = [];
  for (let i = 0; i < n; i++) {
    expected.push(`request /orders/${i}`);
    if (i % 100 === 99) expected.push(`marker ${i}`);
  }
  const got = lines.map((l) => (l.event === 'request' ? `request ${String(l.path).split('/').slice(0, 3).join('/')}` : `${l.event} ${l.after}`));
  assert.equal(got.length, expected.length, 'every line once');
  assert.deepEqual(got, expected, 'in the order logged');
}

test('a stdout pipe nobody reads for 1.5 s: 5000 lines (1.2 MB) all arrive, in order', async () => {
  const r = await runLoggingChild(`
${LOG_LINES}
await logLines(5000);
`, 1500);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no write error reported');
  checkOrder(r.stdout, 5000);
});

test('process.exit() with 12 lines still buffered: they are written on the way out, after what was written before', async () => {
  const r = await runLoggingChild(`
${LOG_LINES}
await logLines(2990);
// Everything so far written, then 10 short lines more (below a 4 KiB chunk: they wait in the buffer, no
// write is in flight) and out.
await new Promise((r) => logger.flush(r));
for (let i = 2990; i < 3000; i++) rl.write(part, 'GET', '/orders/' + i, 'routes[0]', 200, 'allow', 0.5);
logger.warn({ event: 'marker', after: 2999 }, 'marker');
rl.write(part, 'GET', '/orders/last', 'routes[0]', 200, 'allow', 0.5);
process.exit(0);
`, 300);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(JSON.parse(lines.at(-1)!).path, '/orders/last', 'the last line logged is the last written');
  checkOrder(lines.slice(0, -1).join('\n'), 3000);
});
