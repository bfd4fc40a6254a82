// The Authority's refusals on a CA whose state is in PostgreSQL: every refused issuance, revocation and
// renewal is a MeshwardError with a sentence naming the problem, and neither the CA directory nor any row
// of the database changed (every check runs before the first write, on this backend too).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { snapshotDir } from '../support/cli.js';
import { usePostgres } from '../support/postgres.js';
import { HOUR, ISSUE_REFUSALS, T0 } from './fixtures.js';
import { useAuthority } from '../support/ca-authority.js';

describe('Authority refusals with the state in PostgreSQL', () => {
  const pg = usePostgres();
  let database: string;
  const fx = useAuthority(async () => {
    const dsn = await pg.cluster.createDatabase();
    database = new URL(dsn).pathname.slice(1);
    return { store: dsn };
  }, T0);
  const now = new Date(T0.getTime() + HOUR);
  let revokedDer: Buffer;
  let revokedSerial: string;
  before(async () => {
    const revoked = await fx.ca.issue({ spiffeId: 'spiffe://example.org/revoked' }, now);
    await fx.ca.revoke(revoked.serialHex, 'keyCompromise', now);
    revokedDer = revoked.chainDer[0]!;
    revokedSerial = revoked.serialHex;
  });

  /** Every row of every table, and the CA directory. */
  async function snapshot(): Promise<unknown> {
    const tables: Record<string, unknown> = {};
    for (const table of ['ca_certificates', 'certificates', 'counters', 'tokens', 'current_crl', 'schema_version']) {
      tables[table] = await pg.cluster.sql(`SELECT * FROM ${table} ORDER BY 1`, [], database);
    }
    return { tables, dir: snapshotDir(fx.caDir) };
  }

  const refusals: [string, () => Promise<unknown>, string, RegExp][] = [
    ...ISSUE_REFUSALS.map(([what, req, code, expected]): [string, () => Promise<unknown>, string, RegExp] => [`to issue for ${what}`, () => fx.ca.issue(req, now), code, expected]),
    ['to revoke an unknown serial', () => fx.ca.revoke('0123456789abcdef', 'unspecified', now), 'not_found', /no certificate with serial/],
    ['to revoke twice', () => fx.ca.revoke(revokedSerial, 'superseded', now), 'failed_precondition', /already revoked/],
    ['an unknown revocation reason', () => fx.ca.revoke(revokedSerial, 'bored', now), 'invalid_argument', /not a revocation reason/],
    ['to renew a revoked certificate', () => fx.ca.renew(revokedDer, {}, now), 'permission_denied', /was revoked at/],
    ['a token for another trust domain', () => fx.ca.createToken('spiffe://other.org/a', 60_000, now), 'permission_denied', /outside this CA's trust domain/],
    ['a token with a zero lifetime', () => fx.ca.createToken('spiffe://example.org/a', 0, now), 'invalid_argument', /positive/],
  ];
  for (const [what, act, code, expected] of refusals) {
    it(`refuses ${what}, changing no row and no file`, async () => {
      const before = await snapshot();
      await assert.rejects(act, (err: Error & { code: string }) => {
        assert.equal(err.name, 'MeshwardError');
        assert.equal(err.code, code);
        assert.match(err.message, expected);
        return true;
      });
      assert.deepEqual(await snapshot(), before);
    });
  }
});
