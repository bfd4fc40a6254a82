// A running `ca serve` replica (a real process, a real gRPC client renewing over mTLS) whose PostgreSQL is
// stopped: Sign answers UNAVAILABLE naming the database (never its password) and returns no certificate;
// nothing unrecorded is issued; once the database is back, Sign works again without restarting the replica.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import type { CaClient } from '../../src/agent/client.js';
import { TD, csrFor, trySign } from '../ca-service/harness.js';
import { waitFor } from '../support/poll.js';
import { useCa } from '../support/ca-fixture.js';
import { usePostgres } from '../support/postgres.js';

const ID = `spiffe://${TD}/ns/shop/sa/orders`;
const PASSWORD = 'pw-never-printed-7f3a';

describe('a replica whose database goes away and comes back', () => {
  const pg = usePostgres();
  let issued: { privateKeyPem: string; chainPem: string };
  const ca = useCa({
    postgres: pg,
    // Trust authentication ignores the password, which is what lets the test check it is never printed.
    dsn: (db) => db.replace('postgres@', `postgres:${PASSWORD}@`),
    prepare: async ({ dir, store }) => {
      const authority = await Authority.open(dir, { store });
      issued = await authority.issue({ spiffeId: ID, ttlMs: 3_600_000 }, new Date());
      await authority.close();
    },
    processes: {},
  });
  let client: CaClient;
  before(() => {
    client = ca.client({ keyPem: issued.privateKeyPem, chainPem: issued.chainPem });
  });

  it('answers UNAVAILABLE while the database is down and recovers by itself', async () => {
    const ok = await trySign(client, { csr: csrFor(ID).csr, ttlSeconds: 600 });
    assert.ok(ok.ok, JSON.stringify(ok));
    const countRows = async () => Number((await pg.cluster.sql<{ n: string }>('SELECT COUNT(*) AS n FROM certificates', [], new URL(ca.dsn).pathname.slice(1)))[0]!.n);
    const recordedBefore = await countRows();

    await pg.cluster.stop();
    for (let i = 0; i < 3; i++) {
      const down = await trySign(client, { csr: csrFor(ID).csr, ttlSeconds: 600 });
      assert.equal(down.ok, false, 'no certificate while the database is down');
      if (!down.ok) {
        assert.equal(down.code, grpc.status.UNAVAILABLE, down.details);
        assert.match(down.details, new RegExp(`the CA database postgres://postgres@127\\.0\\.0\\.1:${pg.cluster.port}/\\w+ is unreachable`));
        assert.doesNotMatch(down.details, new RegExp(PASSWORD));
      }
    }
    assert.equal(ca.serve.child.exitCode, null, 'the replica keeps running');

    await pg.cluster.start();
    const back = await waitFor('Sign to work again', async () => {
      const r = await trySign(client, { csr: csrFor(ID).csr, ttlSeconds: 600 });
      return r.ok ? r : undefined;
    }, { timeoutMs: 60_000 });
    assert.ok(back.ok);
    const rows = await pg.cluster.sql<{ serial: string }>('SELECT serial FROM certificates WHERE serial = $1', [back.res.serial], new URL(ca.dsn).pathname.slice(1));
    assert.equal(rows.length, 1, 'the certificate issued after the outage is recorded');
    assert.equal(await countRows(), recordedBefore + 1, 'nothing was recorded during the outage, one certificate after it');
    // `ca serve` writes its log through a buffer (a line waits up to 250 ms, docs/cli.md): wait for the line.
    const output = await waitFor('the audit line of a Sign refused UNAVAILABLE', () => {
      const out = ca.serve.output();
      return /"event":"sign"[^\n]*"code":"UNAVAILABLE"/.test(out) ? out : undefined;
    }, { timeoutMs: 10_000 });
    assert.doesNotMatch(output, new RegExp(PASSWORD), 'the password is in no log line');
  });
});
