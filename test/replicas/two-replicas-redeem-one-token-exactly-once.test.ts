// Two `ca serve` replicas (each its own connection pool) on one PostgreSQL database: one bootstrap token
// sent 50 times in parallel, half to each replica, signs exactly once; every other call is refused as
// UNAUTHENTICATED (already used) and recorded nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import type { CaServer } from '../../src/ca/server/server.js';
import { TD, clientFor, csrFor, makeCa, removeDir, startServer, tempDir, trySign } from '../ca-service/harness.js';
import { usePostgres } from '../support/postgres.js';

const ID = `spiffe://${TD}/ns/shop/sa/frontend`;

describe('two replicas, one token, 50 parallel redemptions', () => {
  const pg = usePostgres();
  let root: string;
  let dir: string;
  let dsn: string;
  const servers: CaServer[] = [];
  before(async () => {
    root = tempDir();
    dsn = await pg.cluster.createDatabase();
    dir = await makeCa(root, dsn);
    servers.push(await startServer(dir, { store: dsn }), await startServer(dir, { store: dsn }));
  });
  after(async () => {
    for (const s of servers) await s.close();
    removeDir(root);
  });

  it('signs exactly once', async () => {
    const ca = await Authority.open(dir, { store: dsn });
    const { token } = await ca.createToken(ID, 600_000, new Date());
    const clients = servers.map((s) => clientFor(s, dir));
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
      const recorded = (await ca.list()).filter((c) => c.spiffeId === ID);
      assert.deepEqual(recorded.map((c) => c.serialHex), [won[0]!.ok ? won[0]!.res.serial : '']);
    } finally {
      for (const c of clients) c.close();
      await ca.close();
    }
  });
});
