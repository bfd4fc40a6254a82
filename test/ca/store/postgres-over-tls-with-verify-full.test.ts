// The store's connection to PostgreSQL over TLS, configured only through the DSN: the server presents a
// certificate made by meshward's own CA (IP SAN 127.0.0.1), the client uses sslmode=verify-full with
// sslrootcert = the CA's bundle.crt. Another CA's bundle, a host name the certificate does not carry, and a
// missing sslrootcert file are refused with a message that says so.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Authority } from '../../../src/ca/authority.js';
import { PostgresStore } from '../../../src/ca/store/postgres.js';
import { usePostgres } from '../../support/postgres.js';
import { T0, makeCa, tempDir } from '../fixtures.js';

const t = tempDir();
after(() => t.cleanup());
let ca: Awaited<ReturnType<typeof makeCa>>;
let other: Awaited<ReturnType<typeof makeCa>>;

describe('PostgreSQL over TLS, sslmode=verify-full', () => {
  const pg = usePostgres(async () => {
    ca = await makeCa({}, new Date());
    other = await makeCa({}, new Date());
    const server = await ca.ca.issue({ spiffeId: 'spiffe://example.org/ns/db/sa/postgres', ips: ['127.0.0.1'], ttlMs: 24 * 3_600_000 }, new Date());
    return { tls: { certPem: server.chainPem, keyPem: server.privateKeyPem } };
  });
  after(async () => {
    await ca?.cleanup();
    await other?.cleanup();
  });

  it('connects with verify-full and the CA bundle, and the session is encrypted', async () => {
    const dsn = await pg.cluster.createDatabase(undefined, `sslmode=verify-full&sslrootcert=${join(ca.caDir, 'bundle.crt')}`);
    const store = await PostgresStore.open(dsn);
    try {
      assert.equal(await store.schemaVersion() > 0, true);
      const rows = await pg.cluster.sql<{ ssl: boolean }>("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'meshward'");
      assert.ok(rows.length > 0 && rows.every((r) => r.ssl), `every meshward connection uses TLS: ${JSON.stringify(rows)}`);
      // The whole Authority works through it too.
      const authority = await Authority.init(join(t.dir, 'tls-ca'), { trustDomain: 'example.org', store: dsn }, T0);
      await authority.close();
    } finally {
      await store.close();
    }
  });

  const refusals: [string, () => string, RegExp][] = [
    ['a bundle of another CA', () => `sslmode=verify-full&sslrootcert=${join(other.caDir, 'bundle.crt')}`, /TLS to the database failed|certificate/],
    ['a missing sslrootcert file', () => `sslmode=verify-full&sslrootcert=${join(t.dir, 'nope.crt')}`, /sslrootcert=.*nope\.crt in the store DSN cannot be read \(ENOENT\)/],
  ];
  for (const [what, params, expected] of refusals) {
    it(`refuses ${what}`, async () => {
      const dsn = pg.cluster.dsn('postgres', params());
      await assert.rejects(PostgresStore.open(dsn), (err: Error & { code?: string }) => {
        assert.equal(err.name, 'MeshwardError');
        assert.match(err.message, expected);
        return true;
      });
    });
  }

  it('refuses a host name the server certificate does not carry', async () => {
    const dsn = pg.cluster.dsn('postgres', `sslmode=verify-full&sslrootcert=${join(ca.caDir, 'bundle.crt')}`).replace('127.0.0.1', 'localhost');
    await assert.rejects(PostgresStore.open(dsn), /TLS to the database failed \(Hostname\/IP does not match/);
  });
});
