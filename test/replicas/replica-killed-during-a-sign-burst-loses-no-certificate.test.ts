// kill -9 of a `ca serve` replica in the middle of a burst of Sign calls from 8 clients: every certificate
// a client received is in the database with the same DER (the insert commits before the answer is sent).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authority } from '../../src/ca/authority.js';
import type { CaClient } from '../../src/agent/client.js';
import type { SignResponse } from '../../src/ca/server/proto.js';
import { TD, clientFor, csrFor } from '../ca-service/harness.js';
import { useCa } from '../support/ca-fixture.js';
import { usePostgres } from '../support/postgres.js';

describe('kill -9 of a replica during a Sign burst', () => {
  const pg = usePostgres();
  const ca = useCa({ postgres: pg, processes: {} });

  it('loses no certificate a client received', async () => {
    const authority = await Authority.open(ca.dir, { store: ca.dsn });
    const clients: CaClient[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const spiffeId = `spiffe://${TD}/ns/burst/sa/w${i}`;
        const issued = await authority.issue({ spiffeId, ttlMs: 3_600_000 }, new Date());
        clients.push(clientFor(ca.serve, ca.dir, { keyPem: issued.privateKeyPem, chainPem: issued.chainPem }));
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
      ca.serve.child.kill('SIGKILL');
      await ca.serve.exited;
      stop = true;
      await Promise.all(loops);
      assert.ok(received.length >= 40, `the burst got going (${received.length} answers)`);
      for (const r of received) {
        const row = await authority.store.certificate(r.serial);
        assert.ok(row, `certificate ${r.serial}, received by a client, is recorded`);
        assert.deepEqual(row.der, r.certChain[0]);
      }
    } finally {
      for (const c of clients) c.close();
      await authority.close();
    }
  });
});
