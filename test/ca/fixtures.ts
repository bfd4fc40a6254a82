// Shared fixtures for the CA tests: temporary directories, a fresh CA, and files for openssl to read.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authority, type AuthorityInitOptions, type IssueRequest } from '../../src/ca/authority.js';
import { runOpenssl, type CommandResult } from '../support/cli.js';

export const TD = 'example.org';
/** A fixed moment, so validity arithmetic in tests is exact. */
export const T0 = new Date('2026-01-01T00:00:00Z');
export const HOUR = 3_600_000;

/** Temporary folders have one shape across the tests (test/support/temp-dir.ts). */
import { tempDir } from '../support/temp-dir.js';
export { tempDir };

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

/** Requests the Authority refuses (run on SQLite and on PostgreSQL): what, request, error code, message. */
export const ISSUE_REFUSALS: [string, IssueRequest, string, RegExp][] = [
  ['an ID outside the trust domain', { spiffeId: 'spiffe://other.org/a' }, 'permission_denied', /outside this CA's trust domain/],
  ['an uppercase trust domain', { spiffeId: 'spiffe://EXAMPLE.org/a' }, 'invalid_argument', /lowercase/],
  ['a ".." segment', { spiffeId: 'spiffe://example.org/a/..' }, 'invalid_argument', /"\.\." segment/],
  ['a "." segment', { spiffeId: 'spiffe://example.org/./a' }, 'invalid_argument', /"\." segment/],
  ['an empty segment', { spiffeId: 'spiffe://example.org//a' }, 'invalid_argument', /empty segment/],
  ['a trailing slash', { spiffeId: 'spiffe://example.org/a/' }, 'invalid_argument', /end with/],
  ['a port', { spiffeId: 'spiffe://example.org:443/a' }, 'invalid_argument', /port/],
  ['userinfo', { spiffeId: 'spiffe://me@example.org/a' }, 'invalid_argument', /user info/],
  ['percent-encoding', { spiffeId: 'spiffe://example.org/%61' }, 'invalid_argument', /percent-encoding/],
  ['an ID over 2048 bytes', { spiffeId: `spiffe://example.org/${'x'.repeat(2030)}` }, 'invalid_argument', /2048 bytes/],
  ['another scheme', { spiffeId: 'https://example.org/a' }, 'invalid_argument', /scheme/],
  ['a TTL above the max', { spiffeId: 'spiffe://example.org/a', ttlMs: 24 * HOUR + 1000 }, 'invalid_argument', /above this CA's maximum of 24h/],
  ['a zero TTL', { spiffeId: 'spiffe://example.org/a', ttlMs: 0 }, 'invalid_argument', /must be positive/],
  ['a negative TTL', { spiffeId: 'spiffe://example.org/a', ttlMs: -HOUR }, 'invalid_argument', /must be positive/],
  ['an RSA key under 2048 bits', { spiffeId: 'spiffe://example.org/a', keyType: 'rsa-1024' as never }, 'invalid_argument', /rsa-1024/],
  ['a bad DNS name', { spiffeId: 'spiffe://example.org/a', dns: ['-bad-.example'] }, 'invalid_argument', /not a valid hostname/],
  ['a bad IP', { spiffeId: 'spiffe://example.org/a', ips: ['1.2.3'] }, 'invalid_argument', /not an IPv4 or IPv6/],
  ['a CN over 64 characters', { spiffeId: 'spiffe://example.org/a', cn: 'c'.repeat(65) }, 'invalid_argument', /CN must be 1 to 64/],
];
