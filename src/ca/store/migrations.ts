// The schema of the CA store, one forward-only migration list per backend, side by side so they stay alike.
// A database records in schema_version how many migrations it has applied; a store opening a database at
// a lower version applies the rest (in one transaction), and refuses one at a higher version: it was
// written by a newer meshward whose rows this one may misread. Never edit a migration that has shipped:
// append a new one to both lists (SCHEMA_VERSION is their common length).

export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: CA certificates, issued certificates, counters, bootstrap tokens (times are Unix milliseconds).
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
  // 2: the current CRL, so every process serves the same one (and the revocations it covers).
  `CREATE TABLE current_crl (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     pem TEXT NOT NULL,
     crl_number INTEGER NOT NULL,
     this_update INTEGER NOT NULL,
     next_update INTEGER NOT NULL,
     revocations INTEGER NOT NULL,
     generation INTEGER NOT NULL,
     written_at INTEGER NOT NULL
   );`,
];

export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: as SQLite's first, with PostgreSQL types. A serial is the primary key of its table: unique for the
  // whole CA, hence per issuer; an insert that finds it taken picks a new serial (authority.ts). `seq` keeps
  // insertion order for listings (what SQLite's rowid gives).
  `CREATE TABLE ca_certificates (
     seq BIGSERIAL NOT NULL,
     serial TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('root', 'intermediate')),
     issuer_serial TEXT,
     der BYTEA NOT NULL,
     not_before TIMESTAMPTZ NOT NULL,
     not_after TIMESTAMPTZ NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'retired')),
     activates_at TIMESTAMPTZ NOT NULL,
     created_at TIMESTAMPTZ NOT NULL,
     retired_at TIMESTAMPTZ
   );
   CREATE TABLE certificates (
     seq BIGSERIAL NOT NULL,
     serial TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     issuer_serial TEXT NOT NULL,
     not_before TIMESTAMPTZ NOT NULL,
     not_after TIMESTAMPTZ NOT NULL,
     der BYTEA NOT NULL,
     status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
     revoked_at TIMESTAMPTZ,
     reason TEXT
   );
   CREATE INDEX revoked_by_issuer ON certificates (issuer_serial) WHERE status = 'revoked';
   CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
   CREATE TABLE tokens (
     hash TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     expires_at TIMESTAMPTZ NOT NULL,
     used_at TIMESTAMPTZ,
     created_at TIMESTAMPTZ NOT NULL
   );`,
  // 2: the current CRL.
  `CREATE TABLE current_crl (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     pem TEXT NOT NULL,
     crl_number BIGINT NOT NULL,
     this_update TIMESTAMPTZ NOT NULL,
     next_update TIMESTAMPTZ NOT NULL,
     revocations BIGINT NOT NULL,
     generation BIGINT NOT NULL,
     written_at TIMESTAMPTZ NOT NULL
   );`,
];

if (SQLITE_MIGRATIONS.length !== POSTGRES_MIGRATIONS.length) throw new Error('the SQLite and PostgreSQL migration lists must have the same length');

/** The schema version this meshward writes and understands. */
export const SCHEMA_VERSION = SQLITE_MIGRATIONS.length;

/** The refusal for a database written by a newer meshward. */
export function newerSchemaMessage(where: string, version: number): string {
  return `${where} has schema version ${version}, this meshward knows up to ${SCHEMA_VERSION}: use a newer meshward (a database is never migrated backwards); nothing was changed`;
}
