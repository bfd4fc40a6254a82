// Which store a command uses: --store, then MESHWARD_STORE, then `store:` in config.yaml, then D/ca.db. With
// PostgreSQL no ca.db appears; a DSN's password is in no output; `ca init --store` refuses a database that
// already holds a CA (without --force), like a directory that does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, snapshotDir } from '../support/cli.js';
import { useCliCa } from '../support/ca-cli.js';
import { usePostgres } from '../support/postgres.js';

const ID = 'spiffe://example.org/ns/shop/sa/orders';
const SECRET = 'hunter2-not-for-logs';

describe('choosing the store', () => {
  const pg = usePostgres();
  const env = (extra: Record<string, string> = {}) => ({ env: { ...process.env, MESHWARD_STORE: '', ...extra } });
  const t = useCliCa({ postgres: pg, init: false });

  it('ca init --store writes no ca.db, records a password-free DSN in config.yaml, and later commands find the CA there', async () => {
    const init = await runCli(['ca', 'init', '--dir', t.ca, '--trust-domain', 'example.org', '--store', t.dsn], env());
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /state in postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ \(recorded as store: in config\.yaml\)/);
    assert.equal(existsSync(join(t.ca, 'ca.db')), false, 'no ca.db with PostgreSQL');
    assert.match(readFileSync(join(t.ca, 'config.yaml'), 'utf8'), /^store: "postgres:\/\//m);
    const issue = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', ID, '--out', join(t.dir, 'orders')], env());
    assert.equal(issue.code, 0, issue.stderr);
    const list = await runCli(['ca', 'list', '--dir', t.ca, '--json'], env());
    assert.deepEqual((JSON.parse(list.stdout) as { certificates: { spiffeId: string }[] }).certificates.map((c) => c.spiffeId), [ID]);
    assert.equal(existsSync(join(t.ca, 'ca.db')), false);
    const rows = await pg.cluster.sql<{ spiffe_id: string }>('SELECT spiffe_id FROM certificates', [], new URL(t.dsn).pathname.slice(1));
    assert.deepEqual(rows.map((r) => r.spiffe_id), [ID], 'the certificate is in PostgreSQL');
  });

  it('MESHWARD_STORE overrides config.yaml, --store overrides both, and the password is never printed', async () => {
    const unreachable = `postgres://postgres:${SECRET}@127.0.0.1:1/nowhere`;
    const viaEnv = await runCli(['ca', 'list', '--dir', t.ca], env({ MESHWARD_STORE: unreachable }));
    assert.equal(viaEnv.code, 1);
    assert.match(viaEnv.stderr, /^meshward: error: the CA database postgres:\/\/postgres@127\.0\.0\.1:1\/nowhere is unreachable .*\n$/);
    const viaFlag = await runCli(['ca', 'list', '--dir', t.ca, '--store', t.dsn], env({ MESHWARD_STORE: unreachable }));
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.match(viaFlag.stdout, /1 issued certificate/);
    const flagOverEnv = await runCli(['token', 'create', '--ca-dir', t.ca, '--spiffe-id', ID, '--store', unreachable], env({ MESHWARD_STORE: t.dsn }));
    assert.equal(flagOverEnv.code, 1);
    for (const r of [viaEnv, viaFlag, flagOverEnv]) assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET));
    const sqlite = await runCli(['ca', 'list', '--dir', t.ca, '--store', 'sqlite'], env());
    assert.equal(sqlite.code, 1);
    assert.match(sqlite.stderr, /has no ca\.db.*pass --store postgres/);
  });

  it('refuses a store that is neither sqlite nor a PostgreSQL URL, as a usage error', async () => {
    const r = await runCli(['ca', 'list', '--dir', t.ca, '--store', `mysql://root:${SECRET}@db/x`], env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^meshward: error: --store: "mysql:\/\/root@db\/x" is not a store/);
    assert.doesNotMatch(r.stderr, new RegExp(SECRET));
  });

  it('ca init --store refuses a database that already holds a CA, and changes nothing', async () => {
    const other = join(t.dir, 'other');
    const before = snapshotDir(t.dir);
    const rowsBefore = await pg.cluster.sql('SELECT serial FROM certificates UNION ALL SELECT serial FROM ca_certificates ORDER BY 1', [], new URL(t.dsn).pathname.slice(1));
    const r = await runCli(['ca', 'init', '--dir', other, '--trust-domain', 'example.org', '--store', t.dsn], env());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ already holds a CA \(2 CA certificates, 1 issued certificates, 0 tokens\): pass --force/);
    assert.deepEqual(snapshotDir(t.dir), before);
    assert.deepEqual(await pg.cluster.sql('SELECT serial FROM certificates UNION ALL SELECT serial FROM ca_certificates ORDER BY 1', [], new URL(t.dsn).pathname.slice(1)), rowsBefore);
  });
});
