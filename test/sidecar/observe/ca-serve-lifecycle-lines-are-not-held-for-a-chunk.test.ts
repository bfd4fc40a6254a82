// `ca serve`'s log shape (src/cli/ca-serve.ts, src/sidecar/observe/log.ts): the per-Sign audit lines
// (`event: sign`) wait for the next chunk like the sidecar's request lines, but a lifecycle line such as
// `listening` or `crl_written` is written at the end of the event-loop turn that logged it, with every line
// buffered before it, in order. Anything reading the log right after an event (an operator's script, a test)
// sees it without waiting for the 250 ms chunk timer.
//
// The child runs with setTimeout disabled (it never fires), so the only way a line reaches the file before
// flushLogs() is the end-of-turn write: the result does not depend on how fast the machine is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../support/temp-dir.js';

const LOG_MODULE = fileURLToPath(new URL('../../../src/sidecar/observe/log.js', import.meta.url));

const CHILD = `
import { openSync, readFileSync } from 'node:fs';
import { createLogger, flushLogs } from ${JSON.stringify(LOG_MODULE)};
const armed = [];
globalThis.setTimeout = (fn, ms) => { armed.push(ms); return { unref() {}, ref() {} }; };
const file = process.argv[2];
const logger = createLogger('info', openSync(file, 'w'), { component: 'ca-server', isoTime: false, chunkedEvents: new Set(['sign']) });
const turn = () => new Promise((r) => setImmediate(r));
const waitForText = async (text) => {
  for (let i = 0; i < 100000; i++) {
    if (readFileSync(file, 'utf8').includes(text)) return true;
    await turn();
  }
  return false;
};
logger.info({ event: 'sign', serial: 'a1', result: 'issued' }, 'certificate issued');
logger.info({ event: 'listening', port: 1 }, 'CA server listening');
const listeningSeen = await waitForText('"listening"');
logger.info({ event: 'sign', serial: 'c3', result: 'issued' }, 'certificate issued');
for (let i = 0; i < 200; i++) await turn();
const signHeldForChunk = !readFileSync(file, 'utf8').includes('c3');
await flushLogs(logger);
console.log(JSON.stringify({ listeningSeen, signHeldForChunk, armed }));
`;

test('ca serve: a lifecycle line is written at once, with the audit lines before it; a lone audit line waits for its chunk', () => {
  const dir = tempDir();
  try {
    const script = dir.path('child.mjs');
    const logFile = dir.path('ca.log');
    writeFileSync(script, CHILD);
    const run = spawnSync(process.execPath, [script, logFile], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const seen = JSON.parse(run.stdout) as { listeningSeen: boolean; signHeldForChunk: boolean; armed: number[] };
    assert.equal(seen.listeningSeen, true, 'the listening line reached the file with no timer firing');
    assert.equal(seen.signHeldForChunk, true, 'a Sign line alone is not written before its chunk is due');
    assert.ok(seen.armed.includes(250), `the Sign line armed the 250 ms chunk timer (armed: ${seen.armed.join(', ')})`);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; serial?: string; component: string });
    assert.deepEqual(lines.map((l) => l.serial ?? l.event), ['a1', 'listening', 'c3'], 'every line, in the order logged');
    assert.ok(lines.every((l) => l.component === 'ca-server'));
  } finally {
    dir.cleanup();
  }
});
