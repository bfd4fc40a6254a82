// The CA's persistent state in SQLite (`D/ca.db`): its own CA certificates, every certificate it issued
// with revocation state, counters (CRL numbers) and one-time bootstrap tokens. WAL mode and a busy timeout
// let a running `meshward ca serve` and the CLI share the file; a revocation or a token made by one is seen
// by the other at once. Persistence only: the rules of issuance live in authority.ts.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { MeshwardError } from '../errors.js';

export type CaRole = 'root' | 'intermediate';
/** active: trusted (and signing when it is the newest activated); pending: trusted, signs from activatesAt; retired: no longer trusted. */
export type CaStatus = 'active' | 'pending' | 'retired';

export interface CaCertificateRow {
  serialHex: string;
  role: CaRole;
  /** The root that signed an intermediate; null for roots. */
  issuerSerialHex: string | null;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  status: CaStatus;
  activatesAt: Date;
  createdAt: Date;
  retiredAt: Date | null;
}

export type CertificateState = 'valid' | 'revoked';

export interface CertificateRow {
  serialHex: string;
  spiffeId: string;
  issuerSerialHex: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
  status: CertificateState;
  revokedAt: Date | null;
  reason: string | null;
}

export type TokenProblem = 'unknown' | 'used' | 'expired';

/** Ordered schema migrations; a database records the number it has applied in schema_version. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ca_certificates (
     serial TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('root', 'intermediate')),
     issuer_serial TEXT,
     der BLOB NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'retired')),
     activates_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     retired_at INTEGER
   );
   CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     issuer_serial TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     der BLOB NOT NULL,
     status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
     revoked_at INTEGER,
     reason TEXT
   );
   -- Only revoked rows are indexed: each CRL reads them per issuer, while an index over every row would
   -- cost each issuance another B-tree write (rotate --finish, which reads live rows, is rare enough to scan).
   CREATE INDEX revoked_by_issuer ON certificates (issuer_serial) WHERE status = 'revoked';
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
   CREATE TABLE tokens (
     hash TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER,
     created_at INTEGER NOT NULL
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

interface CaCertificateDbRow {
  serial: string; role: CaRole; issuer_serial: string | null; der: Buffer; not_before: number; not_after: number;
  status: CaStatus; activates_at: number; created_at: number; retired_at: number | null;
}
interface CertificateDbRow {
  serial: string; spiffe_id: string; issuer_serial: string; not_before: number; not_after: number; der: Buffer;
  status: CertificateState; revoked_at: number | null; reason: string | null;
}
interface TokenDbRow { spiffe_id: string; expires_at: number; used_at: number | null }

const date = (ms: number): Date => new Date(ms);
const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

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

/** Turns SQLite's failures into one sentence that names the file and says what to do. */
function storeError(path: string, err: unknown): MeshwardError {
  if (err instanceof MeshwardError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = (err as Error).message ?? String(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT')) {
    return new MeshwardError('failed_precondition', `${path} is corrupted (${message}): restore it from a backup; nothing was changed`);
  }
  if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY')) {
    return new MeshwardError('unavailable', `${path} is locked by another process for too long: try again`);
  }
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new MeshwardError('permission_denied', `cannot open ${path} for writing (${message}): check the CA directory's permissions`);
  }
  return new MeshwardError('unavailable', `${path}: ${message}`, { cause: err });
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

export class CaStore {
  private readonly db: Database.Database;
  private readonly s: ReturnType<CaStore['prepare']>;

  private constructor(readonly path: string, db: Database.Database) {
    this.db = db;
    this.s = this.prepare();
  }

  /** Creates a new database at `path` (which must not exist) with the current schema. */
  static create(path: string): CaStore {
    let db: Database.Database | undefined;
    try {
      try {
        statSync(path);
        throw new MeshwardError('already_exists', `${path} already exists: refusing to overwrite a CA database`);
      } catch (err) {
        if (err instanceof MeshwardError) throw err;
      }
      db = new Database(path);
      CaStore.configure(db);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
      CaStore.migrate(db);
      return new CaStore(path, db);
    } catch (err) {
      db?.close();
      throw storeError(path, err);
    }
  }

  /** Opens an existing database, upgrading its schema if it is older. Never creates or overwrites one. */
  static open(path: string): CaStore {
    checkIsSqliteFile(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { fileMustExist: true });
      // Read the schema before anything that could write (journal mode, migrations).
      const hasVersion = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
      if (!hasVersion) {
        throw new MeshwardError('failed_precondition', `${path} is a SQLite file but not a meshward CA database (no schema_version table): nothing was changed`);
      }
      const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
      const version = row?.version ?? -1;
      if (version < 0 || version > SCHEMA_VERSION) {
        throw new MeshwardError('failed_precondition', `${path} has schema version ${version}, this meshward knows up to ${SCHEMA_VERSION}: use a newer meshward`);
      }
      CaStore.configure(db);
      if (version < SCHEMA_VERSION) CaStore.migrate(db);
      return new CaStore(path, db);
    } catch (err) {
      db?.close();
      throw storeError(path, err);
    }
  }

  private static configure(db: Database.Database): void {
    db.pragma('busy_timeout = 5000');
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }

  private static migrate(db: Database.Database): void {
    db.transaction(() => {
      const { version } = db.prepare('SELECT version FROM schema_version').get() as { version: number };
      for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
      db.prepare('UPDATE schema_version SET version = ?').run(MIGRATIONS.length);
    }).immediate();
  }

  /** Every statement is prepared once; the issuance path only binds and runs. */
  private prepare() {
    const db = this.db;
    return {
      insertCa: db.prepare(`INSERT INTO ca_certificates (serial, role, issuer_serial, der, not_before, not_after, status, activates_at, created_at, retired_at)
        VALUES (@serial, @role, @issuer_serial, @der, @not_before, @not_after, @status, @activates_at, @created_at, @retired_at)`),
      allCa: db.prepare('SELECT * FROM ca_certificates ORDER BY created_at, rowid'),
      setCaStatus: db.prepare('UPDATE ca_certificates SET status = ?, retired_at = ? WHERE serial = ?'),
      insertCert: db.prepare(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status)
        VALUES (?, ?, ?, ?, ?, ?, 'valid')`),
      cert: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
      certStatus: db.prepare('SELECT status, not_after, revoked_at, reason, spiffe_id FROM certificates WHERE serial = ?'),
      allCerts: db.prepare('SELECT * FROM certificates ORDER BY not_before, rowid'),
      revoke: db.prepare("UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ? AND status = 'valid'"),
      revokedBy: db.prepare("SELECT serial, revoked_at, reason FROM certificates WHERE issuer_serial = ? AND status = 'revoked' ORDER BY revoked_at, serial"),
      liveBy: db.prepare('SELECT COUNT(*) AS n, MAX(not_after) AS last FROM certificates WHERE issuer_serial = ? AND not_after > ?'),
      counter: db.prepare('SELECT value FROM counters WHERE name = ?'),
      bumpCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value'),
      insertToken: db.prepare('INSERT INTO tokens (hash, spiffe_id, expires_at, used_at, created_at) VALUES (?, ?, ?, NULL, ?)'),
      token: db.prepare('SELECT spiffe_id, expires_at, used_at FROM tokens WHERE hash = ?'),
      useToken: db.prepare('UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL'),
    };
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(this.path, err);
    }
  }

  /** Runs `fn` in one IMMEDIATE transaction (all or nothing, no lock upgrade deadlock with another process). */
  transaction<T>(fn: () => T): T {
    return this.guard(() => this.db.transaction(fn).immediate());
  }

  get schemaVersion(): number {
    return this.guard(() => (this.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version);
  }

  // CA certificates

  insertCaCertificate(r: Omit<CaCertificateRow, 'retiredAt'> & { retiredAt?: Date | null }): void {
    this.guard(() => this.s.insertCa.run({
      serial: r.serialHex, role: r.role, issuer_serial: r.issuerSerialHex, der: r.der, not_before: r.notBefore.getTime(),
      not_after: r.notAfter.getTime(), status: r.status, activates_at: r.activatesAt.getTime(), created_at: r.createdAt.getTime(),
      retired_at: r.retiredAt ? r.retiredAt.getTime() : null,
    }));
  }

  /** All CA certificates, oldest first. */
  caCertificates(): CaCertificateRow[] {
    return this.guard(() => (this.s.allCa.all() as CaCertificateDbRow[]).map(caRow));
  }

  setCaStatus(serialHex: string, status: CaStatus, retiredAt: Date | null = null): void {
    this.guard(() => this.s.setCaStatus.run(status, retiredAt ? retiredAt.getTime() : null, serialHex));
  }

  // Issued certificates

  insertCertificate(serialHex: string, spiffeId: string, issuerSerialHex: string, notBefore: Date, notAfter: Date, der: Buffer): void {
    this.guard(() => this.s.insertCert.run(serialHex, spiffeId, issuerSerialHex, notBefore.getTime(), notAfter.getTime(), der));
  }

  certificate(serialHex: string): CertificateRow | undefined {
    return this.guard(() => {
      const r = this.s.cert.get(serialHex) as CertificateDbRow | undefined;
      return r && certRow(r);
    });
  }

  /** The columns a revocation check needs, without the DER (the CA server asks this per renewal). */
  certificateState(serialHex: string): { status: CertificateState; notAfter: Date; revokedAt: Date | null; reason: string | null; spiffeId: string } | undefined {
    return this.guard(() => {
      const r = this.s.certStatus.get(serialHex) as Pick<CertificateDbRow, 'status' | 'not_after' | 'revoked_at' | 'reason' | 'spiffe_id'> | undefined;
      return r && { status: r.status, notAfter: date(r.not_after), revokedAt: dateOrNull(r.revoked_at), reason: r.reason, spiffeId: r.spiffe_id };
    });
  }

  certificates(): CertificateRow[] {
    return this.guard(() => (this.s.allCerts.all() as CertificateDbRow[]).map(certRow));
  }

  /** Marks a valid certificate revoked; false when it was not valid (unknown or already revoked). */
  revoke(serialHex: string, at: Date, reason: string): boolean {
    return this.guard(() => this.s.revoke.run(at.getTime(), reason, serialHex).changes === 1);
  }

  revokedBy(issuerSerialHex: string): { serialHex: string; revokedAt: Date; reason: string }[] {
    return this.guard(() => (this.s.revokedBy.all(issuerSerialHex) as { serial: string; revoked_at: number; reason: string }[])
      .map((r) => ({ serialHex: r.serial, revokedAt: date(r.revoked_at), reason: r.reason })));
  }

  /** How many certificates of an issuer are still unexpired at `now`, and when the last one expires. */
  liveCertificates(issuerSerialHex: string, now: Date): { count: number; lastNotAfter: Date | null } {
    return this.guard(() => {
      const r = this.s.liveBy.get(issuerSerialHex, now.getTime()) as { n: number; last: number | null };
      return { count: r.n, lastNotAfter: r.last === null ? null : date(r.last) };
    });
  }

  // Counters (CRL numbers must grow for every CRL an issuer publishes)

  counter(name: string): bigint {
    return this.guard(() => BigInt((this.s.counter.get(name) as { value: number } | undefined)?.value ?? 0));
  }

  nextCounter(name: string): bigint {
    return this.guard(() => BigInt((this.s.bumpCounter.get(name) as { value: number }).value));
  }

  // One-time bootstrap tokens (stored by hash: the database never holds a usable token)

  createToken(hashHex: string, spiffeId: string, expiresAt: Date, now: Date = new Date()): void {
    this.guard(() => this.s.insertToken.run(hashHex, spiffeId, expiresAt.getTime(), now.getTime()));
  }

  /** Uses a token once: the check and the mark happen in one transaction, so two callers cannot both win. */
  consumeToken(hashHex: string, now: Date): { spiffeId: string } | { problem: TokenProblem } {
    return this.transaction(() => {
      const r = this.s.token.get(hashHex) as TokenDbRow | undefined;
      if (!r) return { problem: 'unknown' as const };
      if (r.used_at !== null) return { problem: 'used' as const };
      if (r.expires_at <= now.getTime()) return { problem: 'expired' as const };
      if (this.s.useToken.run(now.getTime(), hashHex).changes !== 1) return { problem: 'used' as const };
      return { spiffeId: r.spiffe_id };
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
