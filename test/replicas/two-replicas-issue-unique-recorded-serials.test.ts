// 200 parallel issuances spread over two `ca serve` replicas on one PostgreSQL database (each with its own
// pool, each Sign redeeming its own bootstrap token in the same transaction as the insert): 200 distinct
// serials, and every certificate a client received is recorded with the same DER.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authority } from '../../src/ca/authority.js';
import { TD, clientFor, csrFor, trySign } from '../ca-service/harness.js';
import { useCa } from '../support/ca-fixture.js';
import { usePostgres } from '../support/postgres.js';

describe('two replicas, 200 parallel issuances', () => {
  const pg = usePostgres();
  const ca = useCa({ postgres: pg, inProcess: { count: 2, options: { signRateLimit: { ratePerSecond: 10_000, burst: 10_000 } } } });

  it('gives 200 unique serials, all recorded', async () => {
    const authority = await Authority.open(ca.dir, { store: ca.store });
    const clients = ca.servers.map((s) => clientFor(s, ca.dir));
    try {
      const requests = [];
      for (let i = 0; i < 200; i++) {
        const id = `spiffe://${TD}/ns/load/sa/w${i}`;
        requests.push({ id, token: (await authority.createToken(id, 600_000, new Date())).token, csr: csrFor(id).csr });
      }
      const outcomes = await Promise.all(requests.map((r, i) => trySign(clients[i % 2]!, { csr: r.csr, token: r.token, ttlSeconds: 600 })));
      const failed = outcomes.filter((o) => !o.ok);
      assert.equal(failed.length, 0, JSON.stringify(failed.slice(0, 3)));
      const issued = outcomes.map((o) => (o.ok ? o.res : undefined)!);
      assert.equal(new Set(issued.map((r) => r.serial)).size, 200);
      for (const r of issued) {
        const row = await authority.store.certificate(r.serial);
        assert.ok(row, `serial ${r.serial} is recorded`);
        assert.deepEqual(row.der, r.certChain[0], 'the recorded DER is the certificate the client received');
      }
    } finally {
      for (const c of clients) c.close();
      await authority.close();
    }
  });
});
