// The PostgreSQL store (≥ 14) through node-postgres: the state of any number of `ca serve` replicas and
// CLI processes sharing one database. Correctness does not rest on one process: a token is used by one
// conditional UPDATE (the row lock makes a second redeemer wait and then find it used), serials are a
// primary key, CRLs are written under a transaction-scoped advisory lock with their numbers, and migrations
// run under another. The pool fails fast (connect, statement, lock and idle-in-transaction timeouts) and
// every backend failure becomes a MeshwardError naming the database without its password; the pool makes
// new connections when the database is back, so a replica recovers by itself. See docs/ca-operations.md.
import { statSync } from 'node:fs';
import pg from 'pg';
import { MeshwardError } from '../../errors.js';
import { POSTGRES_MIGRATIONS, SCHEMA_VERSION, newerSchemaMessage } from './migrations.js';
import { redactDsn, scrubPassword } from './dsn.js';
import {
  DEFAULT_CRL_POLL_MS, StoreError, writtenOnce, type CertificateInsert, type CaCertificateColumns, type CertificateColumns, type CaCertificateRow, type CaStatus, type CaStore, type CertificateRow,
  type CertificateStateRow, type CounterName, type CounterRow, type CrlDraft, type CrlGenerations, type CrlWrite, type CrlWriteOptions, type Migration,
  type RevokedEntry, type StoreContents, type StoreOps, type StoredCrl, type TokenProblem, type TokenRow, recordCrl, watchGenerations,
} from './store.js';

/** Pool settings (docs/ca-operations.md "Pool timeouts"); a DSN query parameter of the same name overrides the server-side ones. */
export const POOL_DEFAULTS = {
  max: 10,
  connectionTimeoutMillis: 5_000,
  idleTimeoutMillis: 30_000,
  statement_timeout: 10_000,
  lock_timeout: 5_000,
  idle_in_transaction_session_timeout: 30_000,
  // Client side: a query on a connection whose peer vanished without a reset (a partition) fails instead of hanging.
  query_timeout: 15_000,
};

/** pg_advisory_xact_lock keys, per database: one migrator at a time, one CRL writer at a time. */
const MIGRATION_LOCK = 7_236_474_001;
const CRL_WRITER_LOCK = 7_236_474_002;
export const CRL_CHANNEL = 'meshward_crl';
const OUR_TABLES = ['ca_certificates', 'certificates', 'counters', 'tokens', 'current_crl'];

type Query = (text: string, values?: unknown[], name?: string) => Promise<pg.QueryResult>;

type CaCertificateDbRow = CaCertificateColumns<Date>;
type CertificateDbRow = CertificateColumns<Date>;
interface CrlDbRow { pem: string; crl_number: string; this_update: Date; next_update: Date; revocations: string; generation: string; written_at: Date }

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOENT']);
const CONNECTION_MESSAGES = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Query read timeout|server closed the connection|terminating connection/i;

/** True for failures of the connection itself (the database stopped, unreachable, restarting). */
export function isConnectionError(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  const message = String((err as Error).message ?? '');
  return CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03'
    || code === '53300' || CONNECTION_MESSAGES.test(message);
}

/** One sentence naming the database (never its password) and what to do. */
export function postgresError(dsn: string, err: unknown): MeshwardError {
  if (err instanceof MeshwardError) return err;
  const where = `the CA database ${redactDsn(dsn)}`;
  const code = String((err as { code?: unknown }).code ?? '');
  const detail = scrubPassword(String((err as Error).message ?? err), dsn).split('\n')[0]!;
  if (isConnectionError(err)) {
    return new StoreError('unavailable', `${where} is unreachable (${detail}): the CA retries by itself once it is back; check that PostgreSQL runs and accepts connections`, { cause: err });
  }
  if (code === '28P01' || code === '28000') {
    return new StoreError('unavailable', `${where} refused the login (${detail}): check the user and password (in the DSN, PGPASSWORD or ~/.pgpass)`);
  }
  if (code === '3D000') return new StoreError('unavailable', `${where} does not exist (${detail}): create it first (createdb)`);
  if (code === '57014') return new StoreError('unavailable', `${where} took too long to answer (${detail}): try again; check the database's load`, { cause: err });
  if (code === '55P03') return new StoreError('unavailable', `${where}: a lock was not granted in time (${detail}): another process holds it; try again`, { cause: err });
  if (code === '40001' || code === '40P01') return new StoreError('unavailable', `${where}: a concurrent update conflicted (${detail}): try again`, { cause: err });
  if (code === '42501') return new StoreError('permission_denied', `${where}: permission denied (${detail}): grant the CA's user rights on its tables`);
  if (/self[- ]signed|unable to verify|certificate|Hostname\/IP does not match|does not support SSL|SSL/i.test(detail)) {
    return new StoreError('unavailable', `${where}: TLS to the database failed (${detail}): check sslmode, sslrootcert and the server certificate's names`);
  }
  return new StoreError('internal', `${where}: ${detail}`, { cause: err });
}

function caRow(r: CaCertificateDbRow): CaCertificateRow {
  return {
    serialHex: r.serial, role: r.role, issuerSerialHex: r.issuer_serial, der: r.der, notBefore: r.not_before, notAfter: r.not_after,
    status: r.status, activatesAt: r.activates_at, createdAt: r.created_at, retiredAt: r.retired_at,
  };
}

function certRow(r: CertificateDbRow): CertificateRow {
  return {
    serialHex: r.serial, spiffeId: r.spiffe_id, issuerSerialHex: r.issuer_serial, notBefore: r.not_before, notAfter: r.not_after,
    der: r.der, status: r.status, revokedAt: r.revoked_at, reason: r.reason,
  };
}

function crlRow(r: CrlDbRow): StoredCrl {
  return {
    pem: r.pem, crlNumber: BigInt(r.crl_number), thisUpdate: r.this_update, nextUpdate: r.next_update,
    revocations: BigInt(r.revocations), generation: BigInt(r.generation), writtenAt: r.written_at,
  };
}

/** The reads and writes through one query function: the pool's (each call commits) or a transaction's client. */
class PgOps implements StoreOps {
  constructor(protected readonly q: Query) {}

  async insertCaCertificate(r: Omit<CaCertificateRow, 'retiredAt'> & { retiredAt?: Date | null }): Promise<void> {
    await this.q(`INSERT INTO ca_certificates (serial, role, issuer_serial, der, not_before, not_after, status, activates_at, created_at, retired_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [r.serialHex, r.role, r.issuerSerialHex, r.der, r.notBefore, r.notAfter, r.status, r.activatesAt, r.createdAt, r.retiredAt ?? null]);
  }

  async caCertificates(): Promise<CaCertificateRow[]> {
    const r = await this.q('SELECT * FROM ca_certificates ORDER BY created_at, seq', [], 'mw_all_ca');
    return (r.rows as CaCertificateDbRow[]).map(caRow);
  }

  async setCaStatus(serialHex: string, status: CaStatus, retiredAt: Date | null = null): Promise<void> {
    await this.q('UPDATE ca_certificates SET status = $1, retired_at = $2 WHERE serial = $3', [status, retiredAt, serialHex]);
  }

  async insertCertificates(rows: readonly CertificateInsert[]): Promise<boolean[]> {
    if (rows.length === 1) {
      const r = rows[0]!;
      return [await this.insertCertificate(r.serialHex, r.spiffeId, r.issuerSerialHex, r.notBefore, r.notAfter, r.der)];
    }
    // One statement (atomic on its own, one round trip): the rows as arrays, unnest keeps their order (seq).
    const r = await this.q(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status)
      SELECT serial, spiffe_id, issuer_serial, not_before, not_after, der, 'valid'
      FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bytea[]) AS t(serial, spiffe_id, issuer_serial, not_before, not_after, der)
      ON CONFLICT (serial) DO NOTHING RETURNING serial`, [
      rows.map((x) => x.serialHex), rows.map((x) => x.spiffeId), rows.map((x) => x.issuerSerialHex),
      rows.map((x) => x.notBefore), rows.map((x) => x.notAfter), rows.map((x) => x.der),
    ], 'mw_insert_certs');
    return writtenOnce(rows, new Set((r.rows as { serial: string }[]).map((x) => x.serial)));
  }

  async insertCertificate(serialHex: string, spiffeId: string, issuerSerialHex: string, notBefore: Date, notAfter: Date, der: Buffer): Promise<boolean> {
    // ON CONFLICT DO NOTHING rather than catching the unique violation: an error would abort the caller's transaction.
    const r = await this.q(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status)
      VALUES ($1, $2, $3, $4, $5, $6, 'valid') ON CONFLICT (serial) DO NOTHING`, [serialHex, spiffeId, issuerSerialHex, notBefore, notAfter, der], 'mw_insert_cert');
    return r.rowCount === 1;
  }

  async certificate(serialHex: string): Promise<CertificateRow | undefined> {
    const r = await this.q('SELECT * FROM certificates WHERE serial = $1', [serialHex], 'mw_cert');
    return r.rows[0] ? certRow(r.rows[0] as CertificateDbRow) : undefined;
  }

  async certificatesBySerial(serialHexes: readonly string[]): Promise<Map<string, CertificateRow>> {
    const r = await this.q('SELECT * FROM certificates WHERE serial = ANY($1::text[])', [serialHexes], 'mw_certs_by_serial');
    return new Map((r.rows as CertificateDbRow[]).map((row) => [row.serial, certRow(row)]));
  }

  async certificateState(serialHex: string): Promise<CertificateStateRow | undefined> {
    const r = await this.q('SELECT status, not_after, revoked_at, reason, spiffe_id FROM certificates WHERE serial = $1', [serialHex], 'mw_cert_state');
    const row = r.rows[0] as Pick<CertificateDbRow, 'status' | 'not_after' | 'revoked_at' | 'reason' | 'spiffe_id'> | undefined;
    return row && { status: row.status, notAfter: row.not_after, revokedAt: row.revoked_at, reason: row.reason, spiffeId: row.spiffe_id };
  }

  async certificates(): Promise<CertificateRow[]> {
    const r = await this.q('SELECT * FROM certificates ORDER BY not_before, seq');
    return (r.rows as CertificateDbRow[]).map(certRow);
  }

  async revoke(serialHex: string, at: Date, reason: string): Promise<boolean> {
    // One statement: the row update and the revocation counter commit together even outside a transaction.
    const r = await this.q(`WITH revoked AS (
        UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = $2 WHERE serial = $3 AND status = 'valid' RETURNING 1)
      INSERT INTO counters (name, value) SELECT 'revocations', 1 FROM revoked
      ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`, [at, reason, serialHex]);
    if (r.rowCount !== 1) return false;
    await this.q('SELECT pg_notify($1, $2)', [CRL_CHANNEL, `revocations:${String(r.rows[0].value)}`]);
    return true;
  }

  async revokedBy(issuerSerialHex: string): Promise<RevokedEntry[]> {
    const r = await this.q("SELECT serial, revoked_at, reason FROM certificates WHERE issuer_serial = $1 AND status = 'revoked' ORDER BY revoked_at, serial", [issuerSerialHex], 'mw_revoked_by');
    return (r.rows as { serial: string; revoked_at: Date; reason: string }[]).map((x) => ({ serialHex: x.serial, revokedAt: x.revoked_at, reason: x.reason }));
  }

  async liveCertificates(issuerSerialHex: string, now: Date): Promise<{ count: number; lastNotAfter: Date | null }> {
    const r = await this.q('SELECT COUNT(*) AS n, MAX(not_after) AS last FROM certificates WHERE issuer_serial = $1 AND not_after > $2', [issuerSerialHex, now]);
    const row = r.rows[0] as { n: string; last: Date | null };
    return { count: Number(row.n), lastNotAfter: row.last };
  }

  async counter(name: CounterName): Promise<bigint> {
    const r = await this.q('SELECT value FROM counters WHERE name = $1', [name], 'mw_counter');
    return BigInt((r.rows[0] as { value: string } | undefined)?.value ?? 0);
  }

  async nextCounter(name: CounterName): Promise<bigint> {
    const r = await this.q('INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value', [name], 'mw_next_counter');
    return BigInt((r.rows[0] as { value: string }).value);
  }

  async counters(): Promise<CounterRow[]> {
    const r = await this.q('SELECT name, value FROM counters ORDER BY name');
    return (r.rows as { name: string; value: string }[]).map((x) => ({ name: x.name, value: BigInt(x.value) }));
  }

  async setCounter(name: string, value: bigint): Promise<void> {
    await this.q('INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [name, value.toString()]);
  }

  async createToken(hashHex: string, spiffeId: string, expiresAt: Date, now: Date): Promise<void> {
    await this.q('INSERT INTO tokens (hash, spiffe_id, expires_at, used_at, created_at) VALUES ($1, $2, $3, NULL, $4)', [hashHex, spiffeId, expiresAt, now]);
  }

  async consumeToken(hashHex: string, now: Date): Promise<{ spiffeId: string } | { problem: TokenProblem }> {
    // A second redeemer blocks on the row lock, then re-checks `used_at IS NULL` against the committed row and gets nothing.
    const won = await this.q('UPDATE tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING spiffe_id', [now, hashHex], 'mw_use_token');
    if (won.rowCount === 1) return { spiffeId: (won.rows[0] as { spiffe_id: string }).spiffe_id };
    const r = await this.q('SELECT used_at FROM tokens WHERE hash = $1', [hashHex], 'mw_token_reason');
    const row = r.rows[0] as { used_at: Date | null } | undefined;
    return { problem: !row ? 'unknown' : row.used_at !== null ? 'used' : 'expired' };
  }

  async tokens(): Promise<TokenRow[]> {
    const r = await this.q('SELECT * FROM tokens ORDER BY created_at, hash');
    return (r.rows as { hash: string; spiffe_id: string; expires_at: Date; used_at: Date | null; created_at: Date }[]).map((x) => ({
      hashHex: x.hash, spiffeId: x.spiffe_id, expiresAt: x.expires_at, usedAt: x.used_at, createdAt: x.created_at,
    }));
  }

  async importToken(t: TokenRow): Promise<void> {
    await this.q('INSERT INTO tokens (hash, spiffe_id, expires_at, used_at, created_at) VALUES ($1, $2, $3, $4, $5)', [t.hashHex, t.spiffeId, t.expiresAt, t.usedAt, t.createdAt]);
  }

  async importCertificate(c: CertificateRow): Promise<void> {
    await this.q(`INSERT INTO certificates (serial, spiffe_id, issuer_serial, not_before, not_after, der, status, revoked_at, reason)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [c.serialHex, c.spiffeId, c.issuerSerialHex, c.notBefore, c.notAfter, c.der, c.status, c.revokedAt, c.reason]);
  }

  async currentCrl(): Promise<StoredCrl | undefined> {
    const r = await this.q('SELECT * FROM current_crl WHERE id = 1', [], 'mw_current_crl');
    return r.rows[0] ? crlRow(r.rows[0] as CrlDbRow) : undefined;
  }

  async importCrl(c: StoredCrl): Promise<void> {
    await this.q(`INSERT INTO current_crl (id, pem, crl_number, this_update, next_update, revocations, generation, written_at)
      VALUES (1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET pem = excluded.pem, crl_number = excluded.crl_number,
      this_update = excluded.this_update, next_update = excluded.next_update, revocations = excluded.revocations,
      generation = excluded.generation, written_at = excluded.written_at`,
    [c.pem, c.crlNumber.toString(), c.thisUpdate, c.nextUpdate, c.revocations.toString(), c.generation.toString(), c.writtenAt]);
  }

  async crlGenerations(): Promise<CrlGenerations> {
    const r = await this.q("SELECT name, value FROM counters WHERE name IN ('revocations', 'crl_generation')", [], 'mw_generations');
    const g: CrlGenerations = { revocations: 0n, crl: 0n };
    for (const row of r.rows as { name: string; value: string }[]) {
      if (row.name === 'revocations') g.revocations = BigInt(row.value);
      else g.crl = BigInt(row.value);
    }
    return g;
  }

  async clear(): Promise<void> {
    await this.q(`TRUNCATE ${OUR_TABLES.join(', ')}`);
  }

  async contents(): Promise<StoreContents> {
    const r = await this.q(`SELECT (SELECT COUNT(*) FROM ca_certificates) AS ca, (SELECT COUNT(*) FROM certificates) AS certs,
      (SELECT COUNT(*) FROM certificates WHERE status = 'revoked') AS revoked, (SELECT COUNT(*) FROM tokens) AS tokens,
      (SELECT COUNT(*) FROM current_crl) AS crl`);
    const row = r.rows[0] as Record<string, string>;
    return { caCertificates: Number(row.ca), certificates: Number(row.certs), revoked: Number(row.revoked), tokens: Number(row.tokens), crl: Number(row.crl) > 0 };
  }
}

export interface PostgresOpenOptions {
  /** Errors of idle pooled connections (the database restarted): logged, never thrown. Default: a stderr warning. */
  warn?: (message: string) => void;
}

export class PostgresStore extends PgOps implements CaStore {
  readonly kind = 'postgres' as const;
  readonly description: string;
  private readonly watches = new Set<{ trigger(): void; stop(): void }>();
  private listener: { client: pg.Client | undefined; timer: NodeJS.Timeout | undefined; backoffMs: number } | undefined;
  private closed = false;

  private constructor(private readonly dsn: string, private readonly pool: pg.Pool, readonly migration: Migration, private readonly warn: (m: string) => void) {
    super(async (text, values, name) => {
      try {
        return await pool.query(name ? { name, text, values } : { text, values });
      } catch (err) {
        throw postgresError(dsn, err);
      }
    });
    this.description = redactDsn(dsn);
  }

  /** Connects, checks the schema and applies missing migrations (one process at a time, under an advisory lock). */
  static async open(dsn: string, opts: PostgresOpenOptions = {}): Promise<PostgresStore> {
    checkSslFiles(dsn);
    const warn = opts.warn ?? ((m: string) => process.stderr.write(`meshward: warning: ${m}\n`));
    const pool = new pg.Pool({ connectionString: dsn, application_name: 'meshward', keepAlive: true, ...POOL_DEFAULTS });
    // Without this handler node-postgres re-emits an idle client's error (the server restarted) as an
    // uncaught 'error' event and Node exits (node-postgres#1324). The pool drops that client by itself.
    pool.on('error', (err) => warn(`${postgresError(dsn, err).message} (an idle connection was dropped)`));
    try {
      const migration = await migrate(pool, dsn);
      return new PostgresStore(dsn, pool, migration, warn);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw postgresError(dsn, err);
    }
  }

  async schemaVersion(): Promise<number> {
    const r = await this.q('SELECT version FROM schema_version');
    return Number((r.rows[0] as { version: number }).version);
  }

  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return this.withClient((_q, ops) => fn(ops));
  }

  /** BEGIN … COMMIT on one pooled connection; ROLLBACK on any failure, and a broken connection is not reused. */
  private async withClient<T>(fn: (q: Query, ops: PgOps) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw postgresError(this.dsn, err);
    }
    const q: Query = async (text, values, name) => {
      try {
        return await client.query(name ? { name, text, values } : { text, values });
      } catch (err) {
        throw postgresError(this.dsn, err);
      }
    };
    try {
      await q('BEGIN');
      const result = await fn(q, new PgOps(q));
      await q('COMMIT');
      client.release();
      return result;
    } catch (err) {
      let broken = false;
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone: do not hand it to the next caller
      }
      client.release(broken ? (err as Error) : undefined);
      throw postgresError(this.dsn, err);
    }
  }

  writeCrl(build: (tx: StoreOps) => Promise<CrlDraft>, opts: CrlWriteOptions): Promise<CrlWrite> {
    return this.withClient(async (q, tx) => {
      if (opts.wait) {
        await q('SELECT pg_advisory_xact_lock($1)', [CRL_WRITER_LOCK]);
      } else {
        const r = await q('SELECT pg_try_advisory_xact_lock($1) AS got', [CRL_WRITER_LOCK]);
        if (!(r.rows[0] as { got: boolean }).got) return { written: false, crl: await tx.currentCrl() };
      }
      const crl = await recordCrl(tx, build, opts);
      await q('SELECT pg_notify($1, $2)', [CRL_CHANNEL, `crl:${crl.generation.toString()}`]);
      return { written: true, crl };
    });
  }

  onCrlChange(listener: (g: CrlGenerations) => void, pollMs = DEFAULT_CRL_POLL_MS): () => void {
    const watch = watchGenerations(() => this.crlGenerations(), listener, pollMs);
    this.watches.add(watch);
    this.listen();
    return () => {
      watch.stop();
      this.watches.delete(watch);
      if (this.watches.size === 0) this.unlisten();
    };
  }

  /** One connection outside the pool holds LISTEN meshward_crl; it reconnects with backoff when it drops. */
  private listen(): void {
    if (this.listener || this.closed) return;
    const state: { client: pg.Client | undefined; timer: NodeJS.Timeout | undefined; backoffMs: number } = { client: undefined, timer: undefined, backoffMs: 500 };
    this.listener = state;
    const connect = async () => {
      state.timer = undefined;
      if (this.listener !== state) return;
      const client = new pg.Client({ connectionString: this.dsn, application_name: 'meshward-listen', keepAlive: true, connectionTimeoutMillis: POOL_DEFAULTS.connectionTimeoutMillis });
      state.client = client;
      const retry = () => {
        if (state.client !== client) return;
        state.client = undefined;
        client.removeAllListeners('notification');
        void client.end().catch(() => undefined);
        if (this.listener === state && !state.timer) {
          state.timer = setTimeout(() => void connect(), state.backoffMs);
          state.timer.unref();
          state.backoffMs = Math.min(state.backoffMs * 2, 30_000);
        }
      };
      client.on('error', retry);
      client.on('end', retry);
      client.on('notification', () => {
        for (const w of this.watches) w.trigger();
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CRL_CHANNEL}`);
        state.backoffMs = 500;
        // Whatever happened while not listening is caught by reading the generations now.
        for (const w of this.watches) w.trigger();
      } catch {
        retry();
      }
    };
    void connect();
  }

  private unlisten(): void {
    const state = this.listener;
    this.listener = undefined;
    if (!state) return;
    if (state.timer) clearTimeout(state.timer);
    const client = state.client;
    state.client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.stop();
    this.watches.clear();
    this.unlisten();
    await this.pool.end().catch(() => undefined);
  }
}

/** sslrootcert/sslcert/sslkey are read by node-postgres with a bare ENOENT: check them first for a clear message. */
function checkSslFiles(dsn: string): void {
  const params = new URL(dsn).searchParams;
  for (const name of ['sslrootcert', 'sslcert', 'sslkey']) {
    const path = params.get(name);
    if (path === null) continue;
    try {
      statSync(path);
    } catch (err) {
      throw new MeshwardError('not_found', `${name}=${path} in the store DSN cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): point it at the file`);
    }
  }
}

/**
 * Brings the schema to SCHEMA_VERSION. Refuses a newer schema and a database that holds our tables
 * without a schema_version (not made by meshward). The migration runs in one transaction under
 * pg_advisory_xact_lock, so replicas booting together on an empty database migrate it exactly once: the
 * others wait for the lock, then find the version current.
 */
async function migrate(pool: pg.Pool, dsn: string): Promise<Migration> {
  const where = `the CA database ${redactDsn(dsn)}`;
  const client = await pool.connect();
  try {
    const found = await readVersion(client, where);
    if (found === SCHEMA_VERSION) return { from: found, to: found };
    await client.query('BEGIN');
    try {
      // A migration may wait for another process's: allow more than the pool's everyday timeouts.
      await client.query("SET LOCAL lock_timeout = '120s'; SET LOCAL statement_timeout = '300s'");
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      await client.query('INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)');
      const version = Number(((await client.query('SELECT version FROM schema_version')).rows[0] as { version: number }).version);
      if (version > SCHEMA_VERSION) throw new MeshwardError('failed_precondition', newerSchemaMessage(where, version));
      for (let v = version; v < POSTGRES_MIGRATIONS.length; v++) await client.query(POSTGRES_MIGRATIONS[v]!);
      await client.query('UPDATE schema_version SET version = $1', [SCHEMA_VERSION]);
      await client.query('COMMIT');
      return { from: version, to: SCHEMA_VERSION };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
}

/** The schema version, or undefined for an empty database; throws for a newer or a foreign one. */
async function readVersion(client: pg.PoolClient, where: string): Promise<number | undefined> {
  const tables = await client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)", [['schema_version', ...OUR_TABLES]]);
  const names = new Set((tables.rows as { table_name: string }[]).map((r) => r.table_name));
  if (!names.has('schema_version')) {
    if (names.size > 0) {
      throw new MeshwardError('failed_precondition', `${where} has tables named like meshward's (${[...names].join(', ')}) but no schema_version: it is not a meshward CA database; use another database; nothing was changed`);
    }
    return undefined;
  }
  const r = await client.query('SELECT version FROM schema_version');
  const version = r.rows.length === 1 ? Number((r.rows[0] as { version: number }).version) : -1;
  if (version < 0) throw new MeshwardError('failed_precondition', `${where} has no usable schema version (schema_version holds ${r.rows.length} rows): it is not a meshward CA database; nothing was changed`);
  if (version > SCHEMA_VERSION) throw new MeshwardError('failed_precondition', newerSchemaMessage(where, version));
  return version;
}
