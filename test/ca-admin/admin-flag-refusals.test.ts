// Refusals of `meshward ca serve --admin`: an address that is not HOST:PORT is a usage error (exit 2) before
// anything listens; an admin port already taken fails the start with one line naming the flag and the
// reason (exit 1), and the gRPC listener it had opened is closed again (the process exits, nothing lingers).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { makeCa, removeDir, tempDir } from '../ca-service/harness.js';
import { runCli } from '../support/cli.js';

describe('ca serve --admin refusals', () => {
  let root: string;
  let dir: string;
  let taken: Server;
  let takenPort: number;
  before(async () => {
    root = tempDir();
    dir = await makeCa(root);
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((resolve) => taken?.close(resolve));
    removeDir(root);
  });

  const cases: [string, string, number, RegExp][] = [
    ['no port', '127.0.0.1', 2, /^meshward: error: --admin "127\.0\.0\.1" is not HOST:PORT/],
    ['a port above 65535', '127.0.0.1:70000', 2, /^meshward: error: --admin "127\.0\.0\.1:70000" is not HOST:PORT/],
    ['words', 'metrics-please', 2, /^meshward: error: --admin "metrics-please" is not HOST:PORT/],
  ];
  for (const [what, value, code, message] of cases) {
    it(`refuses ${what} (${value}) with exit ${code}`, async () => {
      const r = await runCli(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--admin', value], { timeoutMs: 60_000 });
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stdout, /"event":"listening"/, 'nothing was started');
    });
  }

  it('fails with exit 1 when the admin port is taken, and does not keep serving gRPC', async () => {
    const r = await runCli(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${takenPort}`], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^meshward: error: cannot listen on --admin 127\\.0\\.0\\.1:${takenPort}: EADDRINUSE`));
  });
});
