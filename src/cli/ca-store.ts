// `meshward ca migrate` and `meshward ca import`: upgrading a CA's store schema, and moving a CA's state from
// its SQLite file into PostgreSQL (docs/ca-operations.md "The store"). The key files and config.yaml stay in
// the CA directory either way; only the state moves.
import type { Argv, CommandModule } from 'yargs';
import { MeshwardError } from '../errors.js';
import { Authority } from '../ca/authority.js';
import { CaLayout } from '../ca/layout.js';
import { STORE_ENV, describeStore, parseStoreValue, type StoreSpec } from '../ca/store/dsn.js';
import { openStore } from '../ca/store/open-store.js';
import { SqliteStore } from '../ca/store/sqlite.js';
import { isEmptyStore, type CaStore, type StoreContents } from '../ca/store/store.js';
import { failAsUsage, STORE_OPTION_HELP } from './command-support.js';

interface MigrateArgs { dir?: string; store?: string }

/** --dir picks the store as every command does; without it --store (or MESHWARD_STORE) must name a database. */
function migrateTarget(a: MigrateArgs): StoreSpec {
  if (a.dir !== undefined) return Authority.storeOf(new CaLayout(a.dir), a.store);
  const value = a.store ?? process.env[STORE_ENV];
  if (value === undefined || value.trim() === '') {
    throw new MeshwardError('usage', 'name the store to migrate: --dir D (its store), or --store postgres://USER@HOST:PORT/DB (see meshward ca migrate --help)');
  }
  const spec = parseStoreValue(value, '.', a.store !== undefined ? '--store' : 'MESHWARD_STORE');
  if (spec.kind === 'sqlite') throw new MeshwardError('usage', 'a SQLite store is D/ca.db: name its CA directory with --dir D');
  return spec;
}

export const caMigrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate',
  describe: "apply the store's pending schema migrations (forward only) and print the versions; refuses a schema newer than this meshward",
  builder: (y) => failAsUsage(y, 'ca migrate')
    .option('dir', { type: 'string', describe: 'the CA directory (its store is chosen as for every command)' })
    .option('store', { type: 'string', describe: STORE_OPTION_HELP }) as unknown as Argv<MigrateArgs>,
  handler: async (a) => {
    const spec = migrateTarget(a);
    // Opening a store migrates it (PostgreSQL under an advisory lock: one migrator at a time).
    const store = await openStore(spec);
    try {
      const { from, to } = store.migration;
      process.stdout.write(from === to
        ? `${store.description}: schema version ${to} is current, nothing to migrate\n`
        : `${store.description}: migrated the schema from version ${from} to ${to}\n`);
    } finally {
      await store.close();
    }
  },
};

interface ImportArgs { from: string; store?: string }

function countWords(c: StoreContents): string {
  return `${c.caCertificates} CA certificates, ${c.certificates} issued certificates (${c.revoked} revoked), ${c.tokens} unused tokens${c.crl ? ', the current CRL' : ''}`;
}

export const caImportCommand: CommandModule<object, ImportArgs> = {
  command: 'import',
  describe: "copy a CA's state from its SQLite file into an empty PostgreSQL database, in one transaction (keys and config stay in the CA directory)",
  builder: (y) => failAsUsage(y, 'ca import')
    .option('from', { type: 'string', demandOption: true, describe: 'the SQLite database to copy, e.g. D/ca.db' })
    .option('store', { type: 'string', describe: 'the PostgreSQL database to fill: postgres://USER@HOST:PORT/DB (default: $MESHWARD_STORE)' }) as unknown as Argv<ImportArgs>,
  handler: async (a) => {
    const value = a.store ?? process.env[STORE_ENV];
    if (value === undefined || value.trim() === '') throw new MeshwardError('usage', 'name the target with --store postgres://USER@HOST:PORT/DB (see meshward ca import --help)');
    const spec = parseStoreValue(value, '.', a.store !== undefined ? '--store' : 'MESHWARD_STORE');
    if (spec.kind !== 'postgres') throw new MeshwardError('usage', `--store must be a PostgreSQL database to import into, not ${describeStore(spec)}`);
    const source = SqliteStore.open(a.from);
    let target: CaStore | undefined;
    try {
      target = await openStore(spec);
      const imported = await importStore(source, target, new Date());
      process.stdout.write(`imported ${a.from} into ${target.description}: ${countWords(imported)}\n`
        + `next: run every command with --store ${target.description} (or MESHWARD_STORE) and the same CA directory (its keys and config.yaml); `
        + `stop using ${a.from}: move it away so nothing issues from it\n`);
    } finally {
      await target?.close();
      await source.close();
    }
  },
};

/**
 * Copies everything a CA needs into an empty store in one transaction: CA certificates, issued
 * certificates with their revocations, tokens still usable at `now`, every counter (CRL numbers must keep
 * growing) and the current CRL. Counts are checked before the commit, so a partial copy never lands.
 */
export async function importStore(source: CaStore, target: CaStore, now: Date): Promise<StoreContents> {
  const refuse = (c: StoreContents) => new MeshwardError('already_exists', `${target.description} already holds a CA (${countWords(c)}): import only into an empty database; nothing was changed`);
  const before = await target.contents();
  if (!isEmptyStore(before)) throw refuse(before);
  const [caCertificates, certificates, allTokens, counters, crl] = await Promise.all([
    source.caCertificates(), source.certificates(), source.tokens(), source.counters(), source.currentCrl(),
  ]);
  if (caCertificates.length === 0) throw new MeshwardError('failed_precondition', `${source.description} holds no CA certificate: there is nothing to import`);
  const tokens = allTokens.filter((t) => t.usedAt === null && t.expiresAt.getTime() > now.getTime());
  const expected: StoreContents = {
    caCertificates: caCertificates.length, certificates: certificates.length, revoked: certificates.filter((c) => c.status === 'revoked').length,
    tokens: tokens.length, crl: crl !== undefined,
  };
  return target.transaction(async (tx) => {
    const inside = await tx.contents(); // another import may have won the race since the check above
    if (!isEmptyStore(inside)) throw refuse(inside);
    for (const row of caCertificates) await tx.insertCaCertificate(row);
    for (const row of certificates) await tx.importCertificate(row);
    for (const row of tokens) await tx.importToken(row);
    for (const c of counters) await tx.setCounter(c.name, c.value);
    if (crl) await tx.importCrl(crl);
    const after = await tx.contents();
    if (JSON.stringify(after) !== JSON.stringify(expected)) {
      throw new MeshwardError('internal', `the copy does not match the source (expected ${countWords(expected)}, found ${countWords(after)}): nothing was imported`);
    }
    return after;
  });
}
