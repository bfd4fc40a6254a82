// The log buffer encodes each line straight into reused chunk buffers (src/sidecar/observe/line-buffer.ts):
// whatever the lines hold (multi-byte characters, surrogate pairs, lines longer than a chunk and its slack,
// lines that end a chunk mid-way) the descriptor gets exactly the UTF-8 of every line, once, in order, also
// when lines arrive while a write is in flight and chunks queue behind it (written together after). A
// descriptor that does not keep up holds 16 MiB of lines; what comes beyond is dropped and counted, and the
// count line says how many, so written + dropped is every line logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { LineBuffer } from '../../../src/sidecar/observe/line-buffer.js';
import { tempDir } from '../../support/temp-dir.js';
import { runLoggingChild } from '../../support/log-child.js';


/** Lines of every awkward shape, numbered so order and duplicates show. */
function awkwardLines(n: number): string[] {
  const shapes = [
    (i: number) => `{"i":${i},"a":"ascii"}\n`,
    (i: number) => `{"i":${i},"p":"/caf\u00e9/\u20ac/\u4e2d\u6587"}\n`, // 2- and 3-byte characters
    (i: number) => `{"i":${i},"e":"\u{1F600}\u{1F4A9}"}\n`, // surrogate pairs: 4 bytes from 2 UTF-16 units
    (i: number) => `{"i":${i},"long":"${'\u20ac'.repeat(300 + (i % 50))}"}\n`, // over the slack in bytes, not in characters
    (i: number) => `{"i":${i},"huge":"${'x'.repeat(5000)}\u00e9"}\n`, // longer than a whole chunk buffer
  ];
  return Array.from({ length: n }, (_, i) => shapes[i % shapes.length]!(i));
}

for (const chunk of [64, 1000]) {
  test(`${chunk}-byte chunks: the file holds exactly the UTF-8 of every line, in order`, async () => {
    const dir = tempDir();
    try {
      const file = dir.path('out.log');
      const fd = openSync(file, 'w');
      const out = new LineBuffer(fd, { chunk, report: (l) => assert.fail(`unexpected report: ${l}`) });
      const lines = awkwardLines(600);
      // In bursts, so lines arrive while a write is in flight (async) and chunks queue behind it.
      for (let i = 0; i < lines.length; i++) {
        out.write(lines[i]!);
        if (i % 37 === 36) await new Promise((r) => setImmediate(r));
      }
      await out.flush();
      closeSync(fd);
      const got = readFileSync(file);
      assert.ok(got.equals(Buffer.from(lines.join(''), 'utf8')), 'the bytes written are the lines, once each, in order');
    } finally {
      dir.cleanup();
    }
  });
}

test('chunk sizes: 64 KiB to a regular file, 4 KiB to a pipe', () => {
  const dir = tempDir();
  try {
    const fd = openSync(dir.path('f.log'), 'w');
    assert.equal(new LineBuffer(fd).chunk, 64 * 1024);
    closeSync(fd);
  } finally {
    dir.cleanup();
  }
  // This test's stdout under node --test is a pipe.
  assert.equal(new LineBuffer(1).chunk, 4 * 1024);
});

test('a stdout pipe that never keeps up: 16 MiB are held, the rest dropped and counted; written + dropped = every line', async () => {
  const total = 80_000; // about 24 MB of lines, logged in one event-loop turn
  // Read only once the child logged everything and waits on the pipe.
  const { code, stdout, stderr } = await runLoggingChild(`
const logger = createLogger('info');
const rl = requestLogFor(logger, 'info');
const part = rl.connectionPart('spiffe://example.org/ns/shop/sa/frontend', '127.0.0.1:5000');
for (let i = 0; i < ${total}; i++) rl.write(part, 'GET', '/orders/' + i + '/' + 'x'.repeat(200), 'routes[0]', 200, 'allow', 0.5);
await flushLogs(logger);
`, 2000);
  assert.equal(code, 0, stderr);
  const raw = stdout.split('\n').filter((l) => l !== '');
  const lines = raw.map((l) => JSON.parse(l) as { event: string; path?: string; count?: number });
  const requests = lines.filter((l) => l.event === 'request');
  const dropped = lines.filter((l) => l.event === 'log_lines_dropped');
  assert.equal(dropped.length, 1, 'one line says lines were dropped');
  assert.equal(lines.at(-1)!.event, 'log_lines_dropped', 'after the lines that were held');
  const held = raw.slice(0, -1).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  assert.ok(held > 16 * 1024 * 1024 && held < 17 * 1024 * 1024, `about 16 MiB held (${held} bytes)`);
  assert.equal(requests.length + dropped[0]!.count!, total, 'written + dropped = every line logged');
  requests.forEach((l, i) => assert.equal(l.path!.split('/').slice(0, 3).join('/'), `/orders/${i}`, 'the first lines, in order'));
});
