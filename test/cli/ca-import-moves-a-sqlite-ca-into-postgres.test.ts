// `meshward ca import --from D/ca.db --store postgres://…`: a CA made and used on SQLite (issued, revoked,
// a token) continues on PostgreSQL: the same listing and revocations, CRL numbers that keep growing, the
// unused token redeemable once there, expired and used tokens left behind. Refusals change nothing: a
// second import (the target is no longer empty), a target that is not PostgreSQL, a source that is not a CA.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { parseCrl } from '../../src/pki/crl.js';
import { decodePem } from '../../src/pki/pem.js';
import { redeemBootstrapToken } from '../../src/ca/tokens.js';
import { runCli, snapshotDir } from '../support/cli.js';
import { useCliCa } from '../support/ca-cli.js';
import { usePostgres } from '../support/postgres.js';

const A = 'spiffe://example.org/ns/shop/sa/a';
const B = 'spiffe://example.org/ns/shop/sa/b';

describe('meshward ca import', () => {
  const pg = usePostgres();
  const t = useCliCa({ postgres: pg, init: false });
  const env = { env: { ...process.env, MESHWARD_STORE: '' } };
  const ok = async (args: string[]) => {
    const r = await runCli(args, env);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const crlNumbers = (pem: string) => decodePem(pem).map((b) => parseCrl(b.der).crlNumber!);

  it('moves certificates, revocations, the unused token and the counters; the CA carries on there', async () => {
    await ok(['ca', 'init', '--dir', t.ca, '--trust-domain', 'example.org']);
    await ok(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', A, '--out', join(t.dir, 'a')]);
    await ok(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', B, '--out', join(t.dir, 'b')]);
    await ok(['cert', 'revoke', '--ca-dir', t.ca, '--cert', join(t.dir, 'b', 'tls.crt'), '--reason', 'keyCompromise']);
    const token = (await ok(['token', 'create', '--ca-dir', t.ca, '--spiffe-id', A])).trim();
    await ok(['token', 'create', '--ca-dir', t.ca, '--spiffe-id', A, '--ttl', '1s']);
    const sqliteList = JSON.parse(await ok(['ca', 'list', '--dir', t.ca, '--json'])) as unknown;
    const lastSqliteCrl = Math.max(...crlNumbers(await ok(['ca', 'crl', '--dir', t.ca])).map(Number));
    await new Promise((resolve) => setTimeout(resolve, 1200)); // the 1 s token expires: it is not carried over

    const out = await ok(['ca', 'import', '--from', join(t.ca, 'ca.db'), '--store', t.dsn]);
    assert.match(out, /imported .*ca\.db into postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+: 2 CA certificates, 2 issued certificates \(1 revoked\), 1 unused tokens, the current CRL/);

    const pgList = JSON.parse(await ok(['ca', 'list', '--dir', t.ca, '--store', t.dsn, '--json'])) as unknown;
    assert.deepEqual(pgList, sqliteList, 'the same CA certificates and issued certificates, with the revocation');
    const pgCrl = await ok(['ca', 'crl', '--dir', t.ca, '--store', t.dsn]);
    assert.ok(Math.min(...crlNumbers(pgCrl).map(Number)) > lastSqliteCrl, 'CRL numbers keep growing after the move');
    const revokedInCrl = decodePem(pgCrl).flatMap((b) => parseCrl(b.der).revoked.map((r) => r.reason));
    assert.deepEqual(revokedInCrl, ['keyCompromise']);

    const authority = await Authority.open(t.ca, { store: t.dsn });
    try {
      assert.equal(await redeemBootstrapToken(authority.store, token, new Date()), A);
      await assert.rejects(redeemBootstrapToken(authority.store, token, new Date()), /already used/);
    } finally {
      await authority.close();
    }
    await ok(['cert', 'issue', '--ca-dir', t.ca, '--store', t.dsn, '--spiffe-id', A, '--out', join(t.dir, 'a2')]);
  });

  it('refuses a second import, a target that is not PostgreSQL and a source that is not a CA, changing nothing', async () => {
    writeFileSync(join(t.dir, 'notes.txt'), 'not a database\n'.repeat(100));
    const name = new URL(t.dsn).pathname.slice(1);
    const rows = () => pg.cluster.sql('SELECT serial, status FROM certificates ORDER BY serial', [], name);
    const before = { dir: snapshotDir(t.dir), rows: await rows() };
    const cases: [string[], number, RegExp][] = [
      [['ca', 'import', '--from', join(t.ca, 'ca.db'), '--store', t.dsn], 1, /already holds a CA \(2 CA certificates, 3 issued certificates \(1 revoked\), 1 unused tokens, the current CRL\): import only into an empty database; nothing was changed/],
      [['ca', 'import', '--from', join(t.ca, 'ca.db'), '--store', 'sqlite'], 2, /--store must be a PostgreSQL database/],
      [['ca', 'import', '--from', join(t.ca, 'ca.db')], 2, /name the target with --store/],
      [['ca', 'import', '--from', join(t.dir, 'notes.txt'), '--store', t.dsn], 1, /is not a meshward CA database/],
      [['ca', 'import', '--from', join(t.dir, 'missing.db'), '--store', t.dsn], 1, /missing/],
    ];
    for (const [args, code, expected] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^meshward: error: [^\n]+\n$/);
      assert.match(r.stderr, expected);
    }
    assert.deepEqual({ dir: snapshotDir(t.dir), rows: await rows() }, before);
  });
});
