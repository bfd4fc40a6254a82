// `meshward ca migrate` on both backends: a database at schema version 1 is brought to the current one
// (printing from and to), a second run has nothing to do, and a database from a newer meshward is refused
// with a clear message and left as it was. Other commands refuse the newer schema too.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from '../../src/ca/store/sqlite-binding.js';
import { SCHEMA_VERSION } from '../../src/ca/store/migrations.js';
import { runCli, snapshotDir } from '../support/cli.js';
import { tempDir } from '../ca/fixtures.js';
import { usePostgres } from '../support/postgres.js';

// What schema version 1 lacked: the current_crl table (migration 2).
const BACK_TO_V1 = 'DROP TABLE current_crl; UPDATE schema_version SET version = 1';

describe('meshward ca migrate', () => {
  const pg = usePostgres();
  let t: ReturnType<typeof tempDir>;
  const env = { env: { ...process.env, MESHWARD_STORE: '' } };
  before(() => {
    t = tempDir();
  });
  after(() => t.cleanup());

  const backends: [string, (ca: string) => Promise<{ store: string[]; exec: (sql: string) => Promise<void>; shown: RegExp }>][] = [
    ['sqlite', async (ca) => ({
      store: [],
      exec: async (sql) => {
        const db = new Database(join(ca, 'ca.db'));
        db.exec(sql);
        db.close();
      },
      shown: new RegExp(`${join(ca, 'ca.db').replace(/[/.]/g, '\\$&')}`),
    })],
    ['postgres', async () => {
      const dsn = await pg.cluster.createDatabase();
      const name = new URL(dsn).pathname.slice(1);
      return {
        store: ['--store', dsn],
        exec: async (sql) => {
          for (const statement of sql.split(';')) await pg.cluster.sql(statement, [], name);
        },
        shown: /postgres:\/\/postgres@127\.0\.0\.1:\d+\/mw_\w+/,
      };
    }],
  ];

  for (const [name, make] of backends) {
    it(`migrates an older ${name} schema once, then refuses a newer one and changes nothing`, async () => {
      const ca = join(t.dir, name);
      const b = await make(ca);
      assert.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org', ...b.store], env)).code, 0);
      await b.exec(BACK_TO_V1);

      const first = await runCli(['ca', 'migrate', '--dir', ca, ...b.store], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`${b.shown.source}: migrated the schema from version 1 to ${SCHEMA_VERSION}`));
      const second = await runCli(['ca', 'migrate', '--dir', ca, ...b.store], env);
      assert.match(second.stdout, new RegExp(`schema version ${SCHEMA_VERSION} is current, nothing to migrate`));
      const crl = await runCli(['ca', 'crl', '--dir', ca, ...b.store], env);
      assert.equal(crl.code, 0, crl.stderr);

      await b.exec('UPDATE schema_version SET version = 99');
      const before = snapshotDir(t.dir);
      for (const args of [['ca', 'migrate', '--dir', ca], ['ca', 'list', '--dir', ca], ['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/a', '--out', join(t.dir, 'never')]]) {
        const r = await runCli([...args, ...b.store], env);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`^meshward: error: (the CA database )?${b.shown.source} has schema version 99, this meshward knows up to ${SCHEMA_VERSION}: use a newer meshward`));
      }
      assert.deepEqual(snapshotDir(t.dir), before);
    });
  }

  it('needs to be told which store', async () => {
    const r = await runCli(['ca', 'migrate'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /name the store to migrate/);
  });
});
