// The SQLite store: schema version and migrations, WAL mode, one-time tokens that stay used across a
// reopen, and clear refusals (nothing overwritten) for files that are not a meshward CA database.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CaStore, SCHEMA_VERSION } from '../../src/ca/store.js';
import { snapshotDir } from '../helpers/cli.js';
import { T0, tempDir } from './fixtures.js';

describe('CaStore', () => {
  let t: ReturnType<typeof tempDir>;
  before(() => {
    t = tempDir();
  });
  after(() => t.cleanup());

  it('creates the schema at the current version in WAL mode with NORMAL sync and a busy timeout', () => {
    const path = join(t.dir, 'new.db');
    const store = CaStore.create(path);
    assert.equal(store.schemaVersion, SCHEMA_VERSION);
    store.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      assert.deepEqual(tables, ['ca_certificates', 'certificates', 'counters', 'schema_version', 'tokens']);
    } finally {
      db.close();
    }
    const reopened = CaStore.open(path);
    try {
      const db2 = (reopened as unknown as { db: Database.Database }).db;
      assert.equal(db2.pragma('busy_timeout', { simple: true }), 5000);
      assert.equal(db2.pragma('synchronous', { simple: true }), 1); // NORMAL
    } finally {
      reopened.close();
    }
  });

  it('refuses to create over an existing file', () => {
    const path = join(t.dir, 'exists.db');
    writeFileSync(path, 'keep me');
    assert.throws(() => CaStore.create(path), { code: 'already_exists' });
    assert.equal(readFileSync(path, 'utf8'), 'keep me');
  });

  it('uses a token once: unknown, then good, then used, also after a reopen; expired tokens are refused', () => {
    const path = join(t.dir, 'tokens.db');
    const store = CaStore.create(path);
    const later = new Date(T0.getTime() + 600_000);
    store.createToken('aa'.repeat(32), 'spiffe://example.org/a', later, T0);
    store.createToken('bb'.repeat(32), 'spiffe://example.org/b', later, T0);
    assert.deepEqual(store.consumeToken('cc'.repeat(32), T0), { problem: 'unknown' });
    assert.deepEqual(store.consumeToken('aa'.repeat(32), T0), { spiffeId: 'spiffe://example.org/a' });
    assert.deepEqual(store.consumeToken('aa'.repeat(32), T0), { problem: 'used' });
    store.close();
    const again = CaStore.open(path);
    try {
      assert.deepEqual(again.consumeToken('aa'.repeat(32), T0), { problem: 'used' });
      assert.deepEqual(again.consumeToken('bb'.repeat(32), later), { problem: 'expired' });
      assert.deepEqual(again.consumeToken('bb'.repeat(32), T0), { spiffeId: 'spiffe://example.org/b' });
    } finally {
      again.close();
    }
  });

  it('lets only one of two connections win a token', () => {
    const path = join(t.dir, 'race.db');
    const a = CaStore.create(path);
    const b = CaStore.open(path);
    try {
      a.createToken('dd'.repeat(32), 'spiffe://example.org/d', new Date(T0.getTime() + 1000), T0);
      const results = [a.consumeToken('dd'.repeat(32), T0), b.consumeToken('dd'.repeat(32), T0)];
      assert.equal(results.filter((r) => 'spiffeId' in r).length, 1);
      assert.deepEqual(results[1], { problem: 'used' });
    } finally {
      a.close();
      b.close();
    }
  });

  it('upgrades an older schema by applying the missing migrations', () => {
    const path = join(t.dir, 'old.db');
    const db = new Database(path);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);');
    db.close();
    const store = CaStore.open(path);
    try {
      assert.equal(store.schemaVersion, SCHEMA_VERSION);
      assert.deepEqual(store.certificates(), []);
    } finally {
      store.close();
    }
  });

  const broken: [string, (path: string) => void, RegExp][] = [
    ['a text file', (p) => writeFileSync(p, 'not a database at all, just some text that is long enough '.repeat(20)), /not a meshward CA database/],
    ['an empty file', (p) => writeFileSync(p, ''), /not a meshward CA database/],
    ['a truncated database', (p) => {
      const s = CaStore.create(p);
      s.close();
      truncateSync(p, 600);
    }, /corrupted|not a meshward CA database/],
    ['a database with the middle overwritten', (p) => {
      const s = CaStore.create(p);
      for (let i = 0; i < 50; i++) s.insertCertificate(`${i}`.padStart(32, '0'), 'spiffe://example.org/x', 'ab', T0, T0, Buffer.alloc(300, i));
      s.close();
      const bytes = readFileSync(p);
      bytes.fill(0xa5, 100, bytes.length - 100);
      writeFileSync(p, bytes);
    }, /corrupted|not a meshward CA database/],
    ['another application\'s SQLite database', (p) => {
      const db = new Database(p);
      db.exec('CREATE TABLE notes (x TEXT)');
      db.close();
    }, /not a meshward CA database/],
    ['a database from a newer meshward', (p) => {
      const s = CaStore.create(p);
      s.close();
      const db = new Database(p);
      db.prepare('UPDATE schema_version SET version = 99').run();
      db.close();
    }, /schema version 99.*newer meshward/],
  ];
  for (const [what, make, expected] of broken) {
    it(`refuses ${what} with a clear error and changes nothing`, () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, 'ca.db');
        make(path);
        const before = snapshotDir(dir);
        assert.throws(() => {
          const s = CaStore.open(path);
          s.certificates();
          s.close();
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
