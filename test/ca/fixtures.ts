// Shared fixtures for the CA tests: temporary directories, a fresh CA, and files for openssl to read.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority, type AuthorityInitOptions } from '../../src/ca/authority.js';
import { runOpenssl, type CommandResult } from '../helpers/cli.js';

export const TD = 'example.org';
/** A fixed moment, so validity arithmetic in tests is exact. */
export const T0 = new Date('2026-01-01T00:00:00Z');
export const HOUR = 3_600_000;

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshward-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A new CA in a temporary directory (its state in `opts.store`, default D/ca.db); `cleanup` closes it and removes everything. */
export async function makeCa(opts: Partial<AuthorityInitOptions> = {}, now: Date = T0) {
  const t = tempDir();
  const caDir = join(t.dir, 'ca');
  const ca = await Authority.init(caDir, { trustDomain: TD, ...opts }, now);
  return {
    ca,
    root: t.dir,
    caDir,
    /** Writes `data` to a file in the temp dir and returns its path. */
    file(name: string, data: string | Buffer): string {
      const path = join(t.dir, name);
      writeFileSync(path, data);
      return path;
    },
    async cleanup(): Promise<void> {
      await ca.close();
      t.cleanup();
    },
  };
}

/** `openssl verify -x509_strict` with the given trust anchors, untrusted intermediates and extra flags. */
export function opensslVerify(o: { caFile: string; untrusted?: string; cert: string; crl?: string; attime?: Date; extra?: string[] }): Promise<CommandResult> {
  const args = ['verify', '-x509_strict', '-CAfile', o.caFile];
  if (o.untrusted) args.push('-untrusted', o.untrusted);
  if (o.crl) args.push('-crl_check_all', '-CRLfile', o.crl);
  if (o.attime) args.push('-attime', String(Math.floor(o.attime.getTime() / 1000)));
  args.push(...(o.extra ?? []), o.cert);
  return runOpenssl(args);
}

/** While a test holds the CA open, SQLite's shared-memory file changes on every read: compare the rest. */
export const OPEN_DB_VOLATILE = /ca\.db-shm$/;
