// The embedded store: SQLite in `D/ca.db` through better-sqlite3 (the build this runtime loads:
// sqlite-binding.ts). WAL mode and a busy timeout let a running `meshward ca serve` and the CLI share the
// file; a revocation or a token made by one is seen by the other at once. better-sqlite3 is synchronous, so every call completes before it returns its promise; what the
// async interface adds is the transaction gate: while one transaction awaits inside its callback, calls
// made outside it wait, so they never run inside someone else's open transaction on this one connection.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import Database, { type SqliteDatabase } from './sqlite-binding.js';
import { MeshwardError } from '../../errors.js';
import { SCHEMA_VERSION, SQLITE_MIGRATIONS, newerSchemaMessage } from './migrations.js';
import {
  DEFAULT_CRL_POLL_MS, StoreError, writtenOnce, type CertificateInsert, type CaCertificateColumns, type CertificateColumns, type CaCertificateRow, type CaStatus, type CaStore, type CertificateRow,
  type CertificateStateRow, type CounterName, type CounterRow, type CrlDraft, type CrlGenerations, type CrlWrite, type CrlWriteOptions,
  type Migration, type RevokedEntry, type StoreContents, type StoreOps, type StoredCrl, type TokenProblem, type TokenRow, recordCrl, watchGenerations,
} from './store.js';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

type CaCertificateDbRow = CaCertificateColumns<number>;
type CertificateDbRow = CertificateColumns<number>;
interface TokenDbRow { hash: string; spiffe_id: string; expires_at: number; used_at: number | null; created_at: number }
interface CrlDbRow { pem: string; crl_number: number | bigint; this_update: number; next_update: number; revocations: number | bigint; generation: number | bigint; written_at: number }

const date = (ms: number): Date => new Date(ms);
const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));
const msOrNull = (d: Date | null | undefined): number | null => (d ? d.getTime() : null);

function caRow(r: CaCertificateDbRow): CaCertificateRow {
  return {
    serialHex: r.serial, role: r.role, issuerSerialHex: r.issuer_serial, der: r.der, notBefore: date(r.not_before),
    notAfter: date(r.not_after), status: r.status, activatesAt: date(r.activates_at), createdAt: date(r.created_at),
    retiredAt: dateOrNull(r.retired_at),
  };
}

function certRow(r: CertificateDbRow): CertificateRow {
  return {
    serialHex: r.serial, spiffeId: r.spiffe_id, issuerSerialHex: r.issuer_serial, notBefore: date(r.not_before),
    notAfter: date(r.not_after), der: r.der, status: r.status, revokedAt: dateOrNull(r.revoked_at), reason: r.reason,
  };
}

function crlRow(r: CrlDbRow): StoredCrl {
  return {
    pem: r.pem, crlNumber: BigInt(r.crl_number), thisUpdate: date(r.this_update), nextUpdate: date(r.next_update),
    revocations: BigInt(r.revocations), generation: BigInt(r.generation), writtenAt: date(r.written_at),
  };
}

/** Turns SQLite's failures into one sentence that names the file and says what to do. */
function storeError(path: string, err: unknown): MeshwardError {
  if (err instanceof MeshwardError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message ?? String(err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StoreError('failed_precondition', `${path} is corrupted (${message}): restore it from a backup; nothing was changed`);
  }
  if (code.startsWith('SQLITE_BUSY')) {
    return new StoreError('unavailable', `${path} is locked by another process for too long: try again`);
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new StoreError('permission_denied', `cannot open ${path} for writing (${message}): check the CA directory's permissions`);
  }
  return new StoreError('unavailable', `${path}: ${message}`, { cause: err });
}

/** Refuses anything that is not a SQLite file before SQLite sees it: an empty file would be taken as an empty database. */
function checkIsSqliteFile(path: string): void {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new MeshwardError('invalid_argument', `${path} is not a file: it should be the CA's SQLite database`);
    size = st.size;
  } catch (err) {
    if (err instanceof MeshwardError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MeshwardError('not_found', `${path} is missing: this is not a CA directory (run meshward ca init)`);
    if (code === 'EACCES') throw new MeshwardError('permission_denied', `cannot read ${path}: permission denied`);
    throw new MeshwardError('unavailable', `cannot read ${path}: ${(err as Error).message}`);
  }
  const head = Buffer.alloc(SQLITE_MAGIC.length);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') throw new MeshwardError('permission_denied', `cannot read ${path}: permission denied`);
    throw new MeshwardError('unavailable', `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 512 || !head.equals(SQLITE_MAGIC)) {
    throw new MeshwardError('failed_precondition', `${path} is not a meshward CA database (empty, truncated or another kind of file): restore it from a backup; nothing was changed`);
  }
}

function prepare(db: SqliteDatabase) {
  return {
    insertCa: db.prepare(`INSERT INTO ca_certificates (serial, role, issuer_serial, der, not_before, not_after, status, activates_at, created_at, retired_at)
      VALUES (@serial, @role, @issuer_serial, @der, @not_before, @not_after, @status, @activates_at, @created_at, @retired_at)`),
    allCa: db.prepare('SELECT * FROM ca_certificates ORDER BY created_at, rowid'),
    setCaStatus: db.prepare('UPDATE ca_certificates SET status = ?, retired_at = ? WHERE serial = ?'),
    insertCert: db.prepare(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status)
      VALUES (?, ?, ?, ?, ?, ?, 'valid') ON CONFLICT (serial) DO NOTHING`),
    importCert: db.prepare(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status, revoked_at, reason)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    cert: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
    // The serials as one JSON array parameter: one prepared statement for any number of them.
    certsBySerial: db.prepare('SELECT * FROM certificates WHERE serial IN (SELECT value FROM json_each(?))'),
    certStatus: db.prepare('SELECT status, not_after, revoked_at, reason, spiffe_id FROM certificates WHERE serial = ?'),
    allCerts: db.prepare('SELECT * FROM certificates ORDER BY not_before, rowid'),
    revoke: db.prepare("UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ? AND status = 'valid'"),
    bumpRevocations: db.prepare("INSERT INTO counters (name, value) VALUES ('revocations', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1"),
    revokedBy: db.prepare("SELECT serial, revoked_at, reason FROM certificates WHERE issuer_serial = ? AND status = 'revoked' ORDER BY revoked_at, serial"),
    liveBy: db.prepare('SELECT COUNT(*) AS n, MAX(not_after) AS last FROM certificates WHERE issuer_serial = ? AND not_after > ?'),
    counter: db.prepare('SELECT value FROM counters WHERE name = ?'),
    counters: db.prepare('SELECT name, value FROM counters ORDER BY name').safeIntegers(true),
    setCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    bumpCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value'),
    insertToken: db.prepare('INSERT INTO tokens (hash, spiffe_id, expires_at, used_at, created_at) VALUES (?, ?, ?, ?, ?)'),
    useToken: db.prepare('UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING spiffe_id'),
    token: db.prepare('SELECT used_at, expires_at FROM tokens WHERE hash = ?'),
    allTokens: db.prepare('SELECT * FROM tokens ORDER BY created_at, hash'),
    crl: db.prepare('SELECT * FROM current_crl WHERE id = 1'),
    putCrl: db.prepare(`INSERT INTO current_crl (id, pem, crl_number, this_update, next_update, revocations, generation, written_at)
      VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET pem = excluded.pem, crl_number = excluded.crl_number,
      this_update = excluded.this_update, next_update = excluded.next_update, revocations = excluded.revocations,
      generation = excluded.generation, written_at = excluded.written_at`),
    generations: db.prepare("SELECT name, value FROM counters WHERE name IN ('revocations', 'crl_generation')").safeIntegers(true),
    contents: db.prepare(`SELECT (SELECT COUNT(*) FROM ca_certificates) AS ca, (SELECT COUNT(*) FROM certificates) AS certs,
      (SELECT COUNT(*) FROM certificates WHERE status = 'revoked') AS revoked, (SELECT COUNT(*) FROM tokens) AS tokens,
      (SELECT COUNT(*) FROM current_crl) AS crl`),
    clearAll: ['ca_certificates', 'certificates', 'counters', 'tokens', 'current_crl'].map((t) => db.prepare(`DELETE FROM ${t}`)),
  };
}

type Statements = ReturnType<typeof prepare> & {
  revokeAndCount: (at: number, reason: string, serial: string) => boolean;
  insertCertsAtomically: (rows: readonly CertificateInsert[]) => boolean[];
};

/** The reads and writes on one connection, every statement prepared once (the issuance path only binds and runs). */
class SqliteOps implements StoreOps {
  constructor(protected readonly s: Statements, protected readonly path: string) {}

  /** The open transaction that calls through this object must wait for (none inside the transaction itself). */
  protected gate(): Promise<void> | undefined {
    return undefined;
  }

  /** Runs one statement: waits while a transaction is open elsewhere on this connection, maps errors. */
  private async run<T>(fn: () => T): Promise<T> {
    for (let wait = this.gate(); wait; wait = this.gate()) await wait;
    try {
      return fn();
    } catch (err) {
      throw storeError(this.path, err);
    }
  }

  insertCaCertificate(r: Omit<CaCertificateRow, 'retiredAt'> & { retiredAt?: Date | null }): Promise<void> {
    return this.run(() => {
      this.s.insertCa.run({
        serial: r.serialHex, role: r.role, issuer_serial: r.issuerSerialHex, der: r.der, not_before: r.notBefore.getTime(),
        not_after: r.notAfter.getTime(), status: r.status, activates_at: r.activatesAt.getTime(), created_at: r.createdAt.getTime(),
        retired_at: msOrNull(r.retiredAt),
      });
    });
  }

  caCertificates(): Promise<CaCertificateRow[]> {
    return this.run(() => (this.s.allCa.all() as CaCertificateDbRow[]).map(caRow));
  }

  setCaStatus(serialHex: string, status: CaStatus, retiredAt: Date | null = null): Promise<void> {
    return this.run(() => {
      this.s.setCaStatus.run(status, msOrNull(retiredAt), serialHex);
    });
  }

  insertCertificates(rows: readonly CertificateInsert[]): Promise<boolean[]> {
    return this.run(() => this.s.insertCertsAtomically(rows));
  }

  insertCertificate(serialHex: string, spiffeId: string, issuerSerialHex: string, notBefore: Date, notAfter: Date, der: Buffer): Promise<boolean> {
    return this.run(() => this.s.insertCert.run(serialHex, spiffeId, issuerSerialHex, notBefore.getTime(), notAfter.getTime(), der).changes === 1);
  }

  certificate(serialHex: string): Promise<CertificateRow | undefined> {
    return this.run(() => {
      const r = this.s.cert.get(serialHex) as CertificateDbRow | undefined;
      return r && certRow(r);
    });
  }

  certificatesBySerial(serialHexes: readonly string[]): Promise<Map<string, CertificateRow>> {
    return this.run(() => new Map((this.s.certsBySerial.all(JSON.stringify(serialHexes)) as CertificateDbRow[]).map((r) => [r.serial, certRow(r)])));
  }

  certificateState(serialHex: string): Promise<CertificateStateRow | undefined> {
    return this.run(() => {
      const r = this.s.certStatus.get(serialHex) as Pick<CertificateDbRow, 'status' | 'not_after' | 'revoked_at' | 'reason' | 'spiffe_id'> | undefined;
      return r && { status: r.status, notAfter: date(r.not_after), revokedAt: dateOrNull(r.revoked_at), reason: r.reason, spiffeId: r.spiffe_id };
    });
  }

  certificates(): Promise<CertificateRow[]> {
    return this.run(() => (this.s.allCerts.all() as CertificateDbRow[]).map(certRow));
  }

  revoke(serialHex: string, at: Date, reason: string): Promise<boolean> {
    return this.run(() => this.s.revokeAndCount(at.getTime(), reason, serialHex));
  }

  revokedBy(issuerSerialHex: string): Promise<RevokedEntry[]> {
    return this.run(() => (this.s.revokedBy.all(issuerSerialHex) as { serial: string; revoked_at: number; reason: string }[])
      .map((r) => ({ serialHex: r.serial, revokedAt: date(r.revoked_at), reason: r.reason })));
  }

  liveCertificates(issuerSerialHex: string, now: Date): Promise<{ count: number; lastNotAfter: Date | null }> {
    return this.run(() => {
      const r = this.s.liveBy.get(issuerSerialHex, now.getTime()) as { n: number; last: number | null };
      return { count: r.n, lastNotAfter: r.last === null ? null : date(r.last) };
    });
  }

  counter(name: CounterName): Promise<bigint> {
    return this.run(() => BigInt((this.s.counter.get(name) as { value: number } | undefined)?.value ?? 0));
  }

  nextCounter(name: CounterName): Promise<bigint> {
    return this.run(() => BigInt((this.s.bumpCounter.get(name) as { value: number }).value));
  }

  counters(): Promise<CounterRow[]> {
    return this.run(() => (this.s.counters.all() as { name: string; value: bigint }[]).map((r) => ({ name: r.name, value: BigInt(r.value) })));
  }

  setCounter(name: string, value: bigint): Promise<void> {
    return this.run(() => {
      this.s.setCounter.run(name, value);
    });
  }

  createToken(hashHex: string, spiffeId: string, expiresAt: Date, now: Date): Promise<void> {
    return this.run(() => {
      this.s.insertToken.run(hashHex, spiffeId, expiresAt.getTime(), null, now.getTime());
    });
  }

  consumeToken(hashHex: string, now: Date): Promise<{ spiffeId: string } | { problem: TokenProblem }> {
    return this.run(() => {
      const won = this.s.useToken.get(now.getTime(), hashHex, now.getTime()) as { spiffe_id: string } | undefined;
      if (won) return { spiffeId: won.spiffe_id };
      const r = this.s.token.get(hashHex) as { used_at: number | null; expires_at: number } | undefined;
      return { problem: !r ? 'unknown' as const : r.used_at !== null ? 'used' as const : 'expired' as const };
    });
  }

  tokens(): Promise<TokenRow[]> {
    return this.run(() => (this.s.allTokens.all() as TokenDbRow[]).map((r) => ({
      hashHex: r.hash, spiffeId: r.spiffe_id, expiresAt: date(r.expires_at), usedAt: dateOrNull(r.used_at), createdAt: date(r.created_at),
    })));
  }

  importToken(r: TokenRow): Promise<void> {
    return this.run(() => {
      this.s.insertToken.run(r.hashHex, r.spiffeId, r.expiresAt.getTime(), msOrNull(r.usedAt), r.createdAt.getTime());
    });
  }

  importCertificate(r: CertificateRow): Promise<void> {
    return this.run(() => {
      this.s.importCert.run(r.serialHex, r.spiffeId, r.issuerSerialHex, r.notBefore.getTime(), r.notAfter.getTime(), r.der, r.status, msOrNull(r.revokedAt), r.reason);
    });
  }

  currentCrl(): Promise<StoredCrl | undefined> {
    return this.run(() => {
      const r = this.s.crl.get() as CrlDbRow | undefined;
      return r && crlRow(r);
    });
  }

  importCrl(c: StoredCrl): Promise<void> {
    return this.run(() => {
      this.s.putCrl.run(c.pem, c.crlNumber, c.thisUpdate.getTime(), c.nextUpdate.getTime(), c.revocations, c.generation, c.writtenAt.getTime());
    });
  }

  crlGenerations(): Promise<CrlGenerations> {
    return this.run(() => {
      const g: CrlGenerations = { revocations: 0n, crl: 0n };
      for (const r of this.s.generations.all() as { name: string; value: bigint }[]) {
        if (r.name === 'revocations') g.revocations = r.value;
        else g.crl = r.value;
      }
      return g;
    });
  }

  clear(): Promise<void> {
    return this.run(() => {
      for (const statement of this.s.clearAll) statement.run();
    });
  }

  contents(): Promise<StoreContents> {
    return this.run(() => {
      const r = this.s.contents.get() as { ca: number; certs: number; revoked: number; tokens: number; crl: number };
      return { caCertificates: r.ca, certificates: r.certs, revoked: r.revoked, tokens: r.tokens, crl: r.crl > 0 };
    });
  }
}

/** Opens or creates `D/ca.db`. */
export class SqliteStore extends SqliteOps implements CaStore {
  readonly kind = 'sqlite' as const;
  private inTransaction: Promise<void> | undefined;
  private readonly txOps: SqliteOps;
  private readonly watches = new Set<{ stop(): void }>();

  private constructor(path: string, private readonly db: SqliteDatabase, readonly migration: Migration) {
    const prepared = prepare(db);
    // The update and the revocation counter together (a savepoint when the caller's transaction is open).
    const revokeAndCount = db.transaction((at: number, reason: string, serial: string) => {
      const changed = prepared.revoke.run(at, reason, serial).changes === 1;
      if (changed) prepared.bumpRevocations.run();
      return changed;
    });
    // Several certificates in one transaction (a savepoint inside the caller's), all or none.
    const insertCerts = db.transaction((rows: readonly CertificateInsert[]) => {
      const written = new Set<string>();
      for (const r of rows) {
        if (prepared.insertCert.run(r.serialHex, r.spiffeId, r.issuerSerialHex, r.notBefore.getTime(), r.notAfter.getTime(), r.der).changes === 1) written.add(r.serialHex);
      }
      return writtenOnce(rows, written);
    });
    const statements: Statements = {
      ...prepared,
      revokeAndCount: (at, reason, serial) => revokeAndCount.immediate(at, reason, serial),
      insertCertsAtomically: (rows) => insertCerts.immediate(rows),
    };
    super(statements, path);
    this.txOps = new SqliteOps(statements, path);
  }

  protected override gate(): Promise<void> | undefined {
    return this.inTransaction;
  }

  get description(): string {
    return this.path;
  }

  /** Creates a new database at `path` (which must not exist) with the current schema. */
  static create(path: string): SqliteStore {
    let db: SqliteDatabase | undefined;
    try {
      try {
        statSync(path);
        throw new MeshwardError('already_exists', `${path} already exists: refusing to overwrite a CA database`);
      } catch (err) {
        if (err instanceof MeshwardError) throw err;
      }
      db = new Database(path);
      SqliteStore.configure(db);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
      SqliteStore.migrate(db);
      return new SqliteStore(path, db, { from: 0, to: SCHEMA_VERSION });
    } catch (err) {
      db?.close();
      throw storeError(path, err);
    }
  }

  /** Opens an existing database, upgrading its schema if it is older. Never creates or overwrites one. */
  static open(path: string): SqliteStore {
    checkIsSqliteFile(path);
    let db: SqliteDatabase | undefined;
    try {
      db = new Database(path, { fileMustExist: true });
      // Read the schema before anything that could write (journal mode, migrations).
      const hasVersion = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
      if (!hasVersion) {
        throw new MeshwardError('failed_precondition', `${path} is a SQLite file but not a meshward CA database (no schema_version table): nothing was changed`);
      }
      const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
      const version = row?.version ?? -1;
      if (version < 0) throw new MeshwardError('failed_precondition', `${path} has no schema version: it is not a meshward CA database; nothing was changed`);
      if (version > SCHEMA_VERSION) throw new MeshwardError('failed_precondition', newerSchemaMessage(path, version));
      SqliteStore.configure(db);
      const from = version < SCHEMA_VERSION ? SqliteStore.migrate(db) : version;
      return new SqliteStore(path, db, { from, to: SCHEMA_VERSION });
    } catch (err) {
      db?.close();
      throw storeError(path, err);
    }
  }

  private static configure(db: SqliteDatabase): void {
    db.pragma('busy_timeout = 5000');
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }

  /** Applies the missing migrations in one IMMEDIATE transaction (a second process waits, then finds nothing to do); returns the version found. */
  private static migrate(db: SqliteDatabase): number {
    return db.transaction(() => {
      const { version } = db.prepare('SELECT version FROM schema_version').get() as { version: number };
      if (version > SCHEMA_VERSION) throw new MeshwardError('failed_precondition', newerSchemaMessage('the database', version));
      for (let v = version; v < SQLITE_MIGRATIONS.length; v++) db.exec(SQLITE_MIGRATIONS[v]!);
      db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
      return version;
    }).immediate();
  }

  async schemaVersion(): Promise<number> {
    return (this.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
  }

  /** One IMMEDIATE transaction (the write lock is taken at BEGIN: no lock-upgrade deadlock with another process). */
  async transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    while (this.inTransaction) await this.inTransaction;
    let done!: () => void;
    this.inTransaction = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      try {
        this.db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        throw storeError(this.path, err);
      }
      try {
        const result = await fn(this.txOps);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw storeError(this.path, err);
      }
    } finally {
      this.inTransaction = undefined;
      done();
    }
  }

  /** SQLite has one writer at a time anyway: the IMMEDIATE transaction is the CRL writer lock (`wait` is always honoured). */
  writeCrl(build: (tx: StoreOps) => Promise<CrlDraft>, opts: CrlWriteOptions): Promise<CrlWrite> {
    return this.transaction(async (tx) => {
      return { written: true, crl: await recordCrl(tx, build, opts) };
    });
  }

  onCrlChange(listener: (g: CrlGenerations) => void, pollMs = DEFAULT_CRL_POLL_MS): () => void {
    const watch = watchGenerations(() => this.crlGenerations(), listener, pollMs);
    this.watches.add(watch);
    return () => {
      watch.stop();
      this.watches.delete(watch);
    };
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.stop();
    this.watches.clear();
    if (this.db.open) this.db.close();
  }
}

