// The SQLite store's file: schema version and migrations, WAL mode, one-time tokens that stay used across a
// reopen, and clear refusals (nothing overwritten) for files that are not a meshward CA database, including
// one written by a newer meshward. (What every store does is in store-contract-holds-on-sqlite-and-postgres.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database, { type SqliteDatabase } from '../../../src/ca/store/sqlite-binding.js';
import { SCHEMA_VERSION } from '../../../src/ca/store/migrations.js';
import { SqliteStore as CaStore } from '../../../src/ca/store/sqlite.js';
import { snapshotDir } from '../../support/cli.js';
import { T0, tempDir } from '../fixtures.js';

describe('the SQLite store file', () => {
  let t: ReturnType<typeof tempDir>;
  before(() => {
    t = tempDir();
  });
  after(() => t.cleanup());

  it('creates the schema at the current version in WAL mode with NORMAL sync and a busy timeout', async () => {
    const path = join(t.dir, 'new.db');
    const store = CaStore.create(path);
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      assert.deepEqual(tables, ['ca_certificates', 'certificates', 'counters', 'current_crl', 'schema_version', 'tokens']);
    } finally {
      db.close();
    }
    const reopened = CaStore.open(path);
    try {
      const db2 = (reopened as unknown as { db: SqliteDatabase }).db;
      assert.equal(db2.pragma('busy_timeout', { simple: true }), 5000);
      assert.equal(db2.pragma('synchronous', { simple: true }), 1); // NORMAL
    } finally {
      await reopened.close();
    }
  });

  it('refuses to create over an existing file', async () => {
    const path = join(t.dir, 'exists.db');
    writeFileSync(path, 'keep me');
    assert.throws(() => CaStore.create(path), { code: 'already_exists' });
    assert.equal(readFileSync(path, 'utf8'), 'keep me');
  });

  it('keeps a used token used across a reopen', async () => {
    const path = join(t.dir, 'tokens.db');
    const store = CaStore.create(path);
    await store.createToken('aa'.repeat(32), 'spiffe://example.org/a', new Date(T0.getTime() + 600_000), T0);
    assert.deepEqual(await store.consumeToken('aa'.repeat(32), T0), { spiffeId: 'spiffe://example.org/a' });
    await store.close();
    const again = CaStore.open(path);
    try {
      assert.deepEqual(await again.consumeToken('aa'.repeat(32), T0), { problem: 'used' });
    } finally {
      await again.close();
    }
  });

  it('upgrades an older schema by applying the missing migrations', async () => {
    const path = join(t.dir, 'old.db');
    const db = new Database(path);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);');
    db.close();
    const store = CaStore.open(path);
    try {
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.deepEqual(store.migration, { from: 0, to: SCHEMA_VERSION });
      assert.deepEqual(await store.certificates(), []);
    } finally {
      await store.close();
    }
  });

  const broken: [string, (path: string) => Promise<void> | void, RegExp][] = [
    ['a text file', (p) => writeFileSync(p, 'not a database at all, just some text that is long enough '.repeat(20)), /not a meshward CA database/],
    ['an empty file', (p) => writeFileSync(p, ''), /not a meshward CA database/],
    ['a truncated database', async (p) => {
      const s = CaStore.create(p);
      await s.close();
      truncateSync(p, 600);
    }, /corrupted|not a meshward CA database/],
    ['a database with the middle overwritten', async (p) => {
      const s = CaStore.create(p);
      for (let i = 0; i < 50; i++) await s.insertCertificate(`${i}`.padStart(32, '0'), 'spiffe://example.org/x', 'ab', T0, T0, Buffer.alloc(300, i));
      await s.close();
      const bytes = readFileSync(p);
      bytes.fill(0xa5, 100, bytes.length - 100);
      writeFileSync(p, bytes);
    }, /corrupted|not a meshward CA database/],
    ['another application\'s SQLite database', (p) => {
      const db = new Database(p);
      db.exec('CREATE TABLE notes (x TEXT)');
      db.close();
    }, /not a meshward CA database/],
    ['a database from a newer meshward', async (p) => {
      const s = CaStore.create(p);
      await s.close();
      const db = new Database(p);
      db.prepare('UPDATE schema_version SET version = 99').run();
      db.close();
    }, /schema version 99.*newer meshward/],
  ];
  for (const [what, make, expected] of broken) {
    it(`refuses ${what} with a clear error and changes nothing`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, 'ca.db');
        await make(path);
        const before = snapshotDir(dir);
        await assert.rejects(async () => {
          const s = CaStore.open(path);
          try {
            await s.certificates();
          } finally {
            await s.close();
          }
        }, (err: Error & { code?: string }) => {
          assert.match(err.message, expected);
          assert.equal(err.name, 'MeshwardError');
          return true;
        });
        assert.deepEqual(snapshotDir(dir), before);
      } finally {
        cleanup();
      }
    });
  }
});
