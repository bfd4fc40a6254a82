// Where a CA keeps its state, as the user names it: `--store`, MESHWARD_STORE or `store:` in config.yaml
// (in that order), else `D/ca.db`. A PostgreSQL DSN (`postgres://user:password@host:5432/db?sslmode=…`) is
// never printed as given: every message and log line uses `redactDsn`, which drops the password.
import { join } from 'node:path';
import { MeshwardError } from '../../errors.js';

export type StoreSpec =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; dsn: string; description: string };

/** Where the spec came from, for messages. */
export type StoreSource = '--store' | 'MESHWARD_STORE' | 'config.yaml' | 'default';

export const STORE_ENV = 'MESHWARD_STORE';

/** Query parameters that carry a secret (libpq and node-postgres accept both). */
const SECRET_PARAMS = ['password', 'sslpassword'];

/** The DSN with its password removed (user info and secret query parameters; sslmode and file paths are kept). */
export function redactDsn(dsn: string): string {
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    // Not a URL: keep only the scheme, so a malformed DSN with a password in it is still never printed.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dsn)?.[0] ?? '';
    return `${scheme}//(unparsable DSN)`;
  }
  if (url.password) url.password = '';
  for (const name of SECRET_PARAMS) if (url.searchParams.has(name)) url.searchParams.set(name, '***');
  return url.toString().replace(/:@/, '@');
}

/** Removes the DSN's secrets from any text (a message of a library that might quote them). */
export function scrubPassword(text: string, dsn: string): string {
  let secrets: string[];
  try {
    const url = new URL(dsn);
    secrets = [decodeURIComponent(url.password), ...SECRET_PARAMS.map((p) => url.searchParams.get(p) ?? '')];
  } catch {
    return text;
  }
  let out = text;
  for (const secret of secrets.filter((s) => s.length > 0)) out = out.split(secret).join('***').split(encodeURIComponent(secret)).join('***');
  return out;
}

/** Parses a store value: `sqlite` (D/ca.db) or a postgres:// / postgresql:// URL. */
export function parseStoreValue(value: string, caDir: string, source: StoreSource): StoreSpec {
  const text = value.trim();
  if (text === 'sqlite' || text === '') return { kind: 'sqlite', path: join(caDir, 'ca.db') };
  if (/^postgres(ql)?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new MeshwardError('usage', `${source}: ${redactDsn(text)} is not a valid PostgreSQL URL: use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full&sslrootcert=FILE]`);
    }
    if (url.pathname.length <= 1) {
      throw new MeshwardError('usage', `${source}: ${redactDsn(text)} names no database: add one, e.g. postgres://meshward@db.example:5432/meshward_ca`);
    }
    return { kind: 'postgres', dsn: text, description: redactDsn(text) };
  }
  const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? redactDsn(text) : text.slice(0, 80);
  throw new MeshwardError('usage', `${source}: "${shown}" is not a store: use postgres://USER@HOST:PORT/DATABASE, or sqlite for ${join(caDir, 'ca.db')}`);
}

/** Picks the store: --store, then MESHWARD_STORE, then `store:` in config.yaml, then D/ca.db. */
export function resolveStore(caDir: string, flag: string | undefined, configStore: string | undefined, env: NodeJS.ProcessEnv = process.env): { spec: StoreSpec; source: StoreSource } {
  if (flag !== undefined) return { spec: parseStoreValue(flag, caDir, '--store'), source: '--store' };
  const fromEnv = env[STORE_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { spec: parseStoreValue(fromEnv, caDir, 'MESHWARD_STORE'), source: 'MESHWARD_STORE' };
  if (configStore !== undefined) return { spec: parseStoreValue(configStore, caDir, 'config.yaml'), source: 'config.yaml' };
  return { spec: { kind: 'sqlite', path: join(caDir, 'ca.db') }, source: 'default' };
}

export function describeStore(spec: StoreSpec): string {
  return spec.kind === 'sqlite' ? spec.path : spec.description;
}
