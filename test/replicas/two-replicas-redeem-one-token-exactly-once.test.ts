// Two `ca serve` replicas (each its own connection pool) on one PostgreSQL database: one bootstrap token
// sent 50 times in parallel, half to each replica, signs exactly once; every other call is refused as
// UNAUTHENTICATED (already used) and recorded nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import { TD, clientFor, csrFor, trySign } from '../ca-service/harness.js';
import { useCa } from '../support/ca-fixture.js';
import { usePostgres } from '../support/postgres.js';

const ID = `spiffe://${TD}/ns/shop/sa/frontend`;

describe('two replicas, one token, 50 parallel redemptions', () => {
  const pg = usePostgres();
  const ca = useCa({ postgres: pg, inProcess: { count: 2 } });

  it('signs exactly once', async () => {
    const authority = await Authority.open(ca.dir, { store: ca.store });
    const { token } = await authority.createToken(ID, 600_000, new Date());
    const clients = ca.servers.map((s) => clientFor(s, ca.dir));
    try {
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => trySign(clients[i % 2]!, { csr: csrFor(ID).csr, token, ttlSeconds: 600 })));
      const won = outcomes.filter((o) => o.ok);
      assert.equal(won.length, 1, JSON.stringify(outcomes.filter((o) => !o.ok).slice(0, 3)));
      for (const o of outcomes) {
        if (!o.ok) {
          assert.equal(o.code, grpc.status.UNAUTHENTICATED, o.details);
          assert.match(o.details, /already used/);
        }
      }
      const recorded = (await authority.list()).filter((c) => c.spiffeId === ID);
      assert.deepEqual(recorded.map((c) => c.serialHex), [won[0]!.ok ? won[0]!.res.serial : '']);
    } finally {
      for (const c of clients) c.close();
      await authority.close();
    }
  });
});
