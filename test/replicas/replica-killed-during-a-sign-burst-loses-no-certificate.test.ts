// kill -9 of a `ca serve` replica in the middle of a burst of Sign calls from 8 clients: every certificate
// a client received is in the database with the same DER (the insert commits before the answer is sent).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authority } from '../../src/ca/authority.js';
import { CaClient } from '../../src/agent/client.js';
import { caServerSpiffeId } from '../../src/ca/server/proto.js';
import type { SignResponse } from '../../src/ca/server/proto.js';
import { TD, bundleOf, csrFor, makeCa, removeDir, tempDir } from '../ca-service/harness.js';
import { usePostgres } from '../support/postgres.js';
import { startServeProcess, type ServeProcess } from './serve-process.js';

describe('kill -9 of a replica during a Sign burst', () => {
  const pg = usePostgres();
  let root: string;
  let dir: string;
  let dsn: string;
  let serve: ServeProcess;
  before(async () => {
    root = tempDir();
    dsn = await pg.cluster.createDatabase();
    dir = await makeCa(root, dsn);
    serve = await startServeProcess(dir, dsn);
  });
  after(async () => {
    await serve?.stop();
    removeDir(root);
  });

  it('loses no certificate a client received', async () => {
    const ca = await Authority.open(dir, { store: dsn });
    const clients: CaClient[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const spiffeId = `spiffe://${TD}/ns/burst/sa/w${i}`;
        const issued = await ca.issue({ spiffeId, ttlMs: 3_600_000 }, new Date());
        clients.push(new CaClient({
          address: `127.0.0.1:${serve.port}`, rootsPem: bundleOf(dir), caSpiffeId: caServerSpiffeId(TD),
          clientKeyPem: Buffer.from(issued.privateKeyPem), clientChainPem: Buffer.from(issued.chainPem),
        }));
      }
      const received: SignResponse[] = [];
      let stop = false;
      const loops = clients.map(async (client, i) => {
        const csr = csrFor(`spiffe://${TD}/ns/burst/sa/w${i}`).csr;
        while (!stop) {
          try {
            received.push(await client.sign({ csr, token: '', ttlSeconds: 600 }, 10_000));
          } catch {
            return; // the replica is gone
          }
        }
      });
      const deadline = Date.now() + 30_000;
      while (received.length < 40 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      serve.child.kill('SIGKILL');
      await serve.exited;
      stop = true;
      await Promise.all(loops);
      assert.ok(received.length >= 40, `the burst got going (${received.length} answers)`);
      for (const r of received) {
        const row = await ca.store.certificate(r.serial);
        assert.ok(row, `certificate ${r.serial}, received by a client, is recorded`);
        assert.deepEqual(row.der, r.certChain[0]);
      }
    } finally {
      for (const c of clients) c.close();
      await ca.close();
    }
  });
});
