// The CA's persistent state behind one asynchronous interface, whatever keeps it: SQLite (`D/ca.db`, the
// embedded default, ./sqlite.ts) or PostgreSQL (replicas of `ca serve` sharing one database, ./postgres.ts).
// It holds the CA's own certificates, every certificate issued with its revocation state, counters (CRL
// numbers, generations), one-time bootstrap tokens and the current CRL. Persistence only: the rules of
// issuance live in ../authority.ts. docs/ca-operations.md explains the store to operators.
import { MeshwardError } from '../../errors.js';

/**
 * A failure of the store itself (the database unreachable, locked, corrupted, a login refused), as opposed
 * to a refusal an Authority method throws inside a transaction. Both backends map their driver's errors to
 * it; `ca serve` counts them (meshward_ca_store_errors_total). Its name stays MeshwardError: users see no difference.
 */
export class StoreError extends MeshwardError {}

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

/** A certificate to record as issued (valid, not revoked). */
export interface CertificateInsert {
  serialHex: string;
  spiffeId: string;
  issuerSerialHex: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
}

export interface CertificateRow extends CertificateInsert {
  status: CertificateState;
  revokedAt: Date | null;
  reason: string | null;
}

/** A row of ca_certificates as a backend returns it; `T` is how it returns times (SQLite: ms numbers, PostgreSQL: Dates). */
export interface CaCertificateColumns<T> {
  serial: string; role: CaRole; issuer_serial: string | null; der: Buffer; not_before: T; not_after: T;
  status: CaStatus; activates_at: T; created_at: T; retired_at: T | null;
}

/** A row of certificates as a backend returns it. */
export interface CertificateColumns<T> {
  serial: string; spiffe_id: string; issuer_serial: string; not_before: T; not_after: T; der: Buffer;
  status: CertificateState; revoked_at: T | null; reason: string | null;
}

/** The columns a revocation check needs, without the DER. */
export interface CertificateStateRow {
  status: CertificateState;
  notAfter: Date;
  revokedAt: Date | null;
  reason: string | null;
  spiffeId: string;
}

export interface RevokedEntry { serialHex: string; revokedAt: Date; reason: string }

export type TokenProblem = 'unknown' | 'used' | 'expired';

export interface TokenRow { hashHex: string; spiffeId: string; expiresAt: Date; usedAt: Date | null; createdAt: Date }

/** The CRL every replica serves: the PEM (one CRL per CA certificate still trusted) and what it covers. */
export interface StoredCrl {
  pem: string;
  /** The highest CRL number in `pem` (every CRL in it has its own, all taken from the crl_number counter). */
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** The revocation generation the CRL was built from: a CRL is stale once the store's is higher. */
  revocations: bigint;
  /** Grows by one with every CRL written (what onCrlChange reports). */
  generation: bigint;
  writtenAt: Date;
}

/** What changes when a certificate is revoked or a CRL is written: both grow, never go back. */
export interface CrlGenerations { revocations: bigint; crl: bigint }

/** What a CRL builder returns; the store adds the generations and writes it. */
export interface CrlDraft { pem: string; crlNumber: bigint; thisUpdate: Date; nextUpdate: Date }

/** Counters: ca_generation (CA certificates changed), crl_number, revocations, crl_generation. */
export type CounterName = 'ca_generation' | 'crl_number' | 'revocations' | 'crl_generation';
export const COUNTER_NAMES: readonly CounterName[] = ['ca_generation', 'crl_number', 'revocations', 'crl_generation'];

/**
 * The reads and writes of the CA's state. Outside a transaction each call is one statement that commits
 * on its own (no transaction per read on the issuance path); inside `CaStore.transaction` the same calls
 * run on the transaction's connection and commit together.
 */
export interface StoreOps {
  // CA certificates
  insertCaCertificate(row: Omit<CaCertificateRow, 'retiredAt'> & { retiredAt?: Date | null }): Promise<void>;
  /** All CA certificates, oldest first. */
  caCertificates(): Promise<CaCertificateRow[]>;
  setCaStatus(serialHex: string, status: CaStatus, retiredAt?: Date | null): Promise<void>;

  // Issued certificates
  /** Records an issued certificate; false (and nothing written) when the serial is already taken. */
  insertCertificate(serialHex: string, spiffeId: string, issuerSerialHex: string, notBefore: Date, notAfter: Date, der: Buffer): Promise<boolean>;
  /**
   * Records several issued certificates in one statement (SQLite: one transaction), all or none; for each
   * row, false when its serial was already taken (then that row is not written). Group commit uses it.
   */
  insertCertificates(rows: readonly CertificateInsert[]): Promise<boolean[]>;
  certificate(serialHex: string): Promise<CertificateRow | undefined>;
  /** Several certificates in one read, by serial; serials not issued are absent from the map. */
  certificatesBySerial(serialHexes: readonly string[]): Promise<Map<string, CertificateRow>>;
  certificateState(serialHex: string): Promise<CertificateStateRow | undefined>;
  /** Every issued certificate, oldest first. */
  certificates(): Promise<CertificateRow[]>;
  /** Marks a valid certificate revoked and bumps the revocation generation; false when it was not valid (unknown or already revoked). */
  revoke(serialHex: string, at: Date, reason: string): Promise<boolean>;
  revokedBy(issuerSerialHex: string): Promise<RevokedEntry[]>;
  /** How many certificates of an issuer are still unexpired at `now`, and when the last one expires. */
  liveCertificates(issuerSerialHex: string, now: Date): Promise<{ count: number; lastNotAfter: Date | null }>;

  // Counters
  counter(name: CounterName): Promise<bigint>;
  /** Adds one and returns the new value (atomic across processes). */
  nextCounter(name: CounterName): Promise<bigint>;

  // One-time bootstrap tokens (stored by hash: the database never holds a usable token)
  createToken(hashHex: string, spiffeId: string, expiresAt: Date, now: Date): Promise<void>;
  /**
   * Uses a token once with one conditional UPDATE (never select-then-write), so two callers on any
   * number of connections cannot both win; on failure a read names the reason.
   */
  consumeToken(hashHex: string, now: Date): Promise<{ spiffeId: string } | { problem: TokenProblem }>;
  tokens(): Promise<TokenRow[]>;

  // The current CRL
  currentCrl(): Promise<StoredCrl | undefined>;
  crlGenerations(): Promise<CrlGenerations>;

  // Moving a CA between stores (`ca import`) and replacing one (`ca init --force`)
  /** Every counter with its value. */
  counters(): Promise<CounterRow[]>;
  setCounter(name: string, value: bigint): Promise<void>;
  /** Inserts an issued certificate as it is, revocation included. */
  importCertificate(row: CertificateRow): Promise<void>;
  importToken(row: TokenRow): Promise<void>;
  importCrl(crl: StoredCrl): Promise<void>;
  /** Deletes every row of every table but the schema version. */
  clear(): Promise<void>;
  /** Row counts; a store that holds no CA has zero everywhere. */
  contents(): Promise<StoreContents>;
}

/** How a CRL write went: `written` false when another writer held the lock (then `crl` is what it wrote, if any). */
export interface CrlWrite { written: boolean; crl: StoredCrl | undefined }

export interface CrlWriteOptions {
  wait: boolean;
  /** Changes that must commit with this CRL (a revocation): run under the lock, before the revocation generation is read. */
  before?: (tx: StoreOps) => Promise<void>;
}

export interface Migration { from: number; to: number }

/**
 * The part of a CRL write both stores share, run inside their transaction once they hold the writer lock:
 * the changes that commit with it, then the revocation generation (read before the revocations the CRL is
 * built from: a revocation committed in between makes the CRL look older than it is, rebuilt once more,
 * never newer), the CRL built and recorded under the next CRL generation.
 */
export async function recordCrl(tx: StoreOps, build: (tx: StoreOps) => Promise<CrlDraft>, opts: CrlWriteOptions): Promise<StoredCrl> {
  await opts.before?.(tx);
  const revocations = await tx.counter('revocations');
  const draft = await build(tx);
  const generation = await tx.nextCounter('crl_generation');
  const crl: StoredCrl = { ...draft, revocations, generation, writtenAt: new Date() };
  await tx.importCrl(crl);
  return crl;
}

export type StoreKind = 'sqlite' | 'postgres';

export interface CaStore extends StoreOps {
  readonly kind: StoreKind;
  /** Where the state is, safe to print: the file path, or the DSN without its password. */
  readonly description: string;
  /** The schema versions before and after this process opened the store (equal when nothing was migrated). */
  readonly migration: Migration;

  schemaVersion(): Promise<number>;
  /**
   * Runs `fn` in one transaction on one connection: all of its writes commit together or none do. `fn`
   * must use `tx`, not the store (the store's own calls may run on another connection). Writers are
   * serialized where correctness needs it: SQLite takes the write lock at BEGIN (IMMEDIATE); PostgreSQL
   * relies on row locks of the conditional UPDATEs and on advisory locks for CRLs.
   */
  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T>;
  /**
   * Writes a new current CRL, one writer at a time across every process: the CRL numbers and the CRL text
   * are taken and written in one transaction under the CRL writer lock. `build` runs inside it (reading
   * revocations and taking numbers through `tx`). With `wait` false a caller that does not get the lock
   * at once writes nothing and gets back the CRL the other writer wrote; with `wait` true it waits for
   * the lock (up to the lock timeout). Every write notifies onCrlChange listeners in every process.
   * The stored CRL records the revocation generation read before `build` (after `before`): a CRL that may
   * miss a revocation committed meanwhile looks stale and is rebuilt, never the reverse.
   */
  writeCrl(build: (tx: StoreOps) => Promise<CrlDraft>, opts: CrlWriteOptions): Promise<CrlWrite>;
  /**
   * Calls `listener` when a revocation or a CRL write happened in any process (PostgreSQL: LISTEN
   * meshward_crl, plus polling as a fallback; SQLite: polling crlGenerations). Returns the unsubscribe.
   */
  onCrlChange(listener: (g: CrlGenerations) => void, pollMs?: number): () => void;
  close(): Promise<void>;
}

export interface CounterRow { name: string; value: bigint }

export interface StoreContents { caCertificates: number; certificates: number; revoked: number; tokens: number; crl: boolean }

/** True when the store holds no CA: no CA certificate, no issued certificate, no token. */
export function isEmptyStore(c: StoreContents): boolean {
  return c.caCertificates === 0 && c.certificates === 0 && c.tokens === 0;
}

export const DEFAULT_CRL_POLL_MS = 1000;

/**
 * Which rows of a multi-row insert were written, given the serials the database reports written: a serial
 * that appears twice in `rows` counts for its first row only (the second found it taken).
 */
export function writtenOnce(rows: readonly CertificateInsert[], written: ReadonlySet<string>): boolean[] {
  const claimed = new Set<string>();
  return rows.map((r) => {
    if (!written.has(r.serialHex) || claimed.has(r.serialHex)) return false;
    claimed.add(r.serialHex);
    return true;
  });
}

/**
 * Polls `read` every `pollMs` and calls `listener` when either generation moved since the last read;
 * `trigger` reads at once (PostgreSQL calls it on a NOTIFY). A failed read (database away) is skipped:
 * the next one catches up, so a change made during an outage is reported once the database is back.
 */
export function watchGenerations(read: () => Promise<CrlGenerations>, listener: (g: CrlGenerations) => void, pollMs: number): { trigger(): void; stop(): void } {
  let last: CrlGenerations | undefined;
  let reading = false;
  let again = false;
  let stopped = false;
  const poll = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      const g = await read();
      if (!stopped && last && (g.revocations !== last.revocations || g.crl !== last.crl)) listener(g);
      last = g;
    } catch {
      // unreachable or closed: try again at the next tick
    } finally {
      reading = false;
    }
    if (again && !stopped) {
      again = false;
      await poll();
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), pollMs);
  timer.unref();
  return {
    trigger: () => void poll(),
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
