// Revocation: the CRL in D/crl.pem lists the revoked serial under the right issuer, OpenSSL refuses the
// revoked certificate and accepts the others. Renewal keeps identity, names and key, refuses revoked,
// expired and foreign certificates.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/pki/certificate.js';
import { parseCrl } from '../../src/pki/crl.js';
import { decodePem } from '../../src/pki/pem.js';
import { snapshotDir } from '../support/cli.js';
import { HOUR, OPEN_DB_VOLATILE, opensslVerify } from './fixtures.js';
import { useAuthority, withAuthority } from '../support/ca-authority.js';

describe('revocation', () => {
  const now = new Date();
  const fx = useAuthority({}, now);

  it('publishes one CRL per trusted CA certificate with growing CRL numbers', async () => {
    const first = decodePem(await fx.ca.crlPem(now)).map((b) => parseCrl(b.der));
    const second = decodePem(await fx.ca.crlPem(now)).map((b) => parseCrl(b.der));
    assert.equal(first.length, 2);
    const issuers = (await fx.ca.authorities(now)).map((a) => a.subject).sort();
    assert.deepEqual(first.map((c) => c.issuerString).sort(), issuers);
    for (let i = 0; i < 2; i++) {
      assert.ok(second[i]!.crlNumber! > first[i]!.crlNumber!);
      assert.ok(second[i]!.nextUpdate!.getTime() > now.getTime());
      assert.ok(second[i]!.thisUpdate.getTime() <= now.getTime());
    }
    const published = await fx.ca.crlPem(now);
    assert.equal(readFileSync(join(fx.caDir, 'crl.pem'), 'utf8'), published, 'crlPem also writes D/crl.pem');
  });

  it('revokes: the CRL lists the serial and reason, openssl says revoked for it and OK for the others', async () => {
    const bad = await fx.ca.issue({ spiffeId: 'spiffe://example.org/bad' }, now);
    const good = await fx.ca.issue({ spiffeId: 'spiffe://example.org/good' }, now);
    const r = await fx.ca.revoke(bad.serialHex.toUpperCase(), 'keyCompromise', now);
    assert.equal(r.serialHex, bad.serialHex);
    const crls = decodePem(readFileSync(join(fx.caDir, 'crl.pem'))).map((b) => parseCrl(b.der));
    const intermediateCrl = crls.find((c) => c.revoked.length > 0)!;
    assert.deepEqual(intermediateCrl.revoked.map((e) => [e.serialHex, e.reason]), [[bad.serialHex, 'keyCompromise']]);
    assert.equal(intermediateCrl.issuerString, parseCertificate(bad.chainDer[1]!).subjectString);
    const crl = join(fx.caDir, 'crl.pem');
    const common = { caFile: join(fx.caDir, 'root.crt'), untrusted: join(fx.caDir, 'intermediate.crt'), crl };
    const revoked = await opensslVerify({ ...common, cert: fx.file('bad.crt', bad.certificatePem) });
    assert.notEqual(revoked.code, 0);
    assert.match(revoked.stdout + revoked.stderr, /certificate revoked/);
    const ok = await opensslVerify({ ...common, cert: fx.file('good.crt', good.certificatePem) });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(await fx.ca.certificateStatus(bad.serialHex, now), {
      status: 'revoked', spiffeId: 'spiffe://example.org/bad', notAfter: bad.notAfter, revokedAt: now, reason: 'keyCompromise',
    });
    assert.equal((await fx.ca.certificateStatus(good.serialHex, now)).status, 'valid');
    assert.equal((await fx.ca.certificateStatus(good.serialHex, new Date(now.getTime() + 2 * HOUR))).status, 'expired');
    assert.equal((await fx.ca.certificateStatus('abcdef', now)).status, 'unknown');
  });

  const refusals: [string, () => Promise<unknown>, RegExp][] = [
    ['an unknown serial', () => fx.ca.revoke('0123456789abcdef', 'unspecified', now), /no certificate with serial 0123456789abcdef/],
    ['a serial that is not hex', () => fx.ca.revoke('xyz', 'unspecified', now), /not a serial number/],
    ['an unknown reason', async () => fx.ca.revoke((await fx.ca.list(now))[0]!.serialHex, 'bored', now), /not a revocation reason/],
    ['a second revocation', async () => {
      const c = (await fx.ca.list(now)).find((l) => l.status === 'revoked')!;
      return fx.ca.revoke(c.serialHex, 'superseded', now);
    }, /already revoked/],
    ['the CA\'s own intermediate', async () => fx.ca.revoke((await fx.ca.authorities(now)).find((a) => a.role === 'intermediate')!.serialHex, 'unspecified', now), /ca rotate/],
  ];
  for (const [what, act, expected] of refusals) {
    it(`refuses to revoke ${what} and changes nothing`, async () => {
      const before = snapshotDir(fx.caDir, OPEN_DB_VOLATILE);
      await assert.rejects(act, expected);
      assert.deepEqual(snapshotDir(fx.caDir, OPEN_DB_VOLATILE), before);
    });
  }
});

describe('renewal', () => {
  const now = new Date();
  const fx = useAuthority({}, new Date(now.getTime() - 2 * HOUR));

  it('keeps the identity, names, subject and public key, with a new serial and fresh validity of the same length', async () => {
    const first = await fx.ca.issue({ spiffeId: 'spiffe://example.org/r', dns: ['r.example.org'], ips: ['::1'], cn: 'r', ou: ['team'], ttlMs: 2 * HOUR }, now);
    const later = new Date(now.getTime() + HOUR);
    const renewed = await fx.ca.renew(first.chainDer[0]!, {}, later);
    const a = parseCertificate(first.chainDer[0]!);
    const b = parseCertificate(renewed.chainDer[0]!);
    assert.notEqual(b.serialHex, a.serialHex);
    assert.deepEqual(b.spkiDer, a.spkiDer);
    assert.deepEqual([b.uris, b.dns, b.ips, b.subjectString], [a.uris, a.dns, a.ips, a.subjectString]);
    assert.equal(b.notAfter.getTime() - b.notBefore.getTime(), a.notAfter.getTime() - a.notBefore.getTime());
    assert.ok(b.notAfter > a.notAfter);
  });

  const refusals: [string, () => Promise<Buffer> | Buffer, string, RegExp][] = [
    ['a revoked certificate', async () => {
      const c = await fx.ca.issue({ spiffeId: 'spiffe://example.org/revoked' }, now);
      await fx.ca.revoke(c.serialHex, 'keyCompromise', now);
      return c.chainDer[0]!;
    }, 'permission_denied', /was revoked at .*cannot be renewed/],
    ['an expired certificate', async () => (await fx.ca.issue({ spiffeId: 'spiffe://example.org/old', ttlMs: 1000 }, new Date(now.getTime() - HOUR))).chainDer[0]!, 'failed_precondition', /expired/],
    ['a certificate of another CA', () => withAuthority({}, now, async (other) => (await other.ca.issue({ spiffeId: 'spiffe://example.org/foreign' }, now)).chainDer[0]!), 'not_found', /was not issued by this CA/],
    ['junk instead of a certificate', () => Buffer.from('not a certificate'), 'invalid_argument', /./],
  ];
  for (const [what, make, code, expected] of refusals) {
    it(`refuses to renew ${what} and changes nothing`, async () => {
      const der = await make();
      const before = snapshotDir(fx.caDir, OPEN_DB_VOLATILE);
      await assert.rejects(() => fx.ca.renew(der, {}, now), (err: Error & { code: string }) => {
        assert.equal(err.code, code);
        assert.match(err.message, expected);
        return true;
      });
      assert.deepEqual(snapshotDir(fx.caDir, OPEN_DB_VOLATILE), before);
    });
  }
});
