// `meshward agent --ca a:port,b:port`: the first address is dead (nothing listens there), the agent moves
// to the second, bootstraps, writes tls.crt, tls.key, ca.crt and crl.pem in one generation, and keeps its
// bundle/CRL watch on the address that answers. A malformed list is refused before anything is written.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { TD } from '../ca-service/harness.js';
import { MESHWARD_BIN, runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { useCa } from '../support/ca-fixture.js';

const ID = `spiffe://${TD}/ns/shop/sa/orders`;

/** A port nothing listens on: bound once, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('agent --ca with several addresses', () => {
  let agent: ChildProcess | undefined;
  after(async () => { // registered first, so it runs before the CA stops
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent!.once('exit', resolve));
      agent.kill('SIGTERM');
      await exited;
    }
  });
  const ca = useCa({ processes: {} });

  async function token(): Promise<string> {
    const authority = await Authority.open(ca.dir);
    try {
      return (await authority.createToken(ID, 600_000, new Date())).token;
    } finally {
      await authority.close();
    }
  }

  it('uses the second address when the first is dead, and writes crl.pem with the certificate', async () => {
    const out = join(ca.root, 'identity');
    const addresses = `127.0.0.1:${await deadPort()},127.0.0.1:${ca.serve.port}`;
    let log = '';
    agent = spawn(process.execPath, [MESHWARD_BIN, 'agent', '--ca', addresses, '--bundle', join(ca.dir, 'bundle.crt'), '--token', await token(),
      '--spiffe-id', ID, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
    const running = agent;
    await waitFor('the agent to write its files', () => {
      if (running.exitCode !== null) throw new Error(`agent exited ${running.exitCode}: ${log}`);
      return existsSync(join(out, 'crl.pem')) ? true : undefined;
    }, { timeoutMs: 60_000 });
    const generation = readlinkSync(join(out, '..data'));
    assert.deepEqual(readdirSync(join(out, generation)).sort(), ['ca.crt', 'crl.pem', 'tls.crt', 'tls.key'], 'one generation holds all four files');
    assert.match(log, /CA unreachable; trying the next address/);
    assert.match(log, /certificate written/);
    assert.equal(running.exitCode, null, 'the agent keeps running (renewal and watch on the live address)');
  });

  const refusals: [string, string, RegExp][] = [
    ['a list with an empty entry', '127.0.0.1:1,,127.0.0.1:2', /"" is not HOST:PORT/],
    ['an entry without a port', '127.0.0.1:1,ca.example', /"ca\.example" is not HOST:PORT/],
    ['a trailing comma', '127.0.0.1:1,', /"" is not HOST:PORT/],
  ];
  for (const [what, value, message] of refusals) {
    it(`refuses ${what} with one line and writes nothing`, async () => {
      const out = join(ca.root, `refused-${refusals.findIndex((r) => r[0] === what)}`);
      const r = await runCli(['agent', '--ca', value, '--bundle', join(ca.dir, 'bundle.crt'), '--token', 'x', '--spiffe-id', ID, '--out', out, '--once']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(existsSync(out), false, 'nothing written');
    });
  }
});
