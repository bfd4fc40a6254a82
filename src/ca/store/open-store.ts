// Opens the store a StoreSpec names (see ./dsn.ts for how the spec is chosen): SQLite's file, or a
// PostgreSQL database (connected, schema checked and migrated before this returns).
import type { StoreSpec } from './dsn.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { CaStore } from './store.js';

export interface OpenStoreOptions {
  /** SQLite: create a new `ca.db` (refused when the file exists). PostgreSQL: the same as opening (the schema is created by migrating). */
  create?: boolean;
  /** Where PostgreSQL's idle-connection errors go (default: a stderr warning). */
  warn?: (message: string) => void;
}

export async function openStore(spec: StoreSpec, opts: OpenStoreOptions = {}): Promise<CaStore> {
  if (spec.kind === 'sqlite') return opts.create ? SqliteStore.create(spec.path) : SqliteStore.open(spec.path);
  return PostgresStore.open(spec.dsn, { warn: opts.warn });
}
