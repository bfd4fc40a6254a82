// describePem / formatDescription: chains, CSRs and CRLs in words, relative to the time passed in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { createCsr } from '../../src/pki/csr.js';
import { describeDuration, describePem, formatDescription } from '../../src/pki/describe.js';
import { encodePem } from '../../src/pki/pem.js';
import { crlDerFor, makeTestPki } from '../support/pki-fixtures.js';

const pki = makeTestPki({ now: new Date(Date.UTC(2030, 0, 1, 12, 0, 0)) });
const leaf = pki.leaf({ dns: ['orders.local'] });

describe('describePem', () => {
  it('describes a chain: identity, role, validity, time left, issuer link, fingerprint', () => {
    const items = describePem(Buffer.from(leaf.chainPem + pki.root.pem), new Date(Date.UTC(2030, 0, 1, 12, 30, 0))) as Record<string, unknown>[];
    assert.equal(items.length, 3);
    assert.deepEqual(items.map((i) => i.role), ['leaf', 'intermediate CA', 'root CA']);
    const l = items[0]!;
    assert.equal(l.kind, 'certificate');
    assert.equal(l.identity, 'spiffe://example.org/ns/default/sa/workload');
    assert.equal(l.status, 'valid');
    assert.equal(l.timeLeft, '30m');
    assert.equal(l.serial, leaf.cert.serialHex);
    assert.equal(l.fingerprintSha256, leaf.cert.fingerprintSha256);
    assert.deepEqual(l.dns, ['orders.local']);
    assert.equal(l.issuerInFile, 'next certificate (signature verified)');
    assert.equal(items[2]!.issuerInFile, 'self-signed (signature verified)');
    assert.deepEqual(items[1]!.permittedUriDomains, ['example.org']);
    const text = formatDescription(items);
    assert.match(text, /\[1\] certificate \(leaf\)\n\s+identity\s+spiffe:\/\/example\.org\/ns\/default\/sa\/workload/);
    assert.match(text, /time left\s+30m\n/);
    assert.match(text, /extensions\s+basicConstraints \(critical\), keyUsage \(critical\)/);
    assert.equal(JSON.parse(JSON.stringify(items)).length, 3);
  });

  it('says expired and not yet valid relative to the time passed in', () => {
    const [late] = describePem(Buffer.from(leaf.pem), new Date(Date.UTC(2030, 0, 3, 13, 1, 0))) as Record<string, unknown>[];
    assert.equal(late!.status, 'expired');
    assert.equal(late!.timeLeft, 'expired 2d ago');
    const [early] = describePem(Buffer.from(leaf.pem), new Date(Date.UTC(2029, 11, 31))) as Record<string, unknown>[];
    assert.equal(early!.status, 'not yet valid');
  });

  it('describes a CSR, a CRL and DER input; names a private key without showing it', () => {
    const csr = createCsr({ subject: { cn: 'x' }, uris: ['spiffe://example.org/x'] }, leaf.keys);
    const crl = crlDerFor(pki.intermediate, [leaf], { thisUpdate: pki.now, nextUpdate: new Date(pki.now.getTime() + 60_000), crlNumber: 3n, reason: 'superseded' });
    const text = encodePem('CERTIFICATE REQUEST', csr) + encodePem('X509 CRL', crl) + leaf.keyPem;
    const items = describePem(Buffer.from(text), new Date(pki.now.getTime() + 120_000)) as Record<string, unknown>[];
    assert.deepEqual(items.map((i) => i.kind), ['certificate request', 'crl', 'other']);
    assert.equal(items[0]!.identity, 'spiffe://example.org/x');
    assert.equal(items[1]!.status, 'stale');
    assert.equal(items[1]!.crlNumber, '3');
    assert.deepEqual(items[1]!.revoked, [{ serial: leaf.cert.serialHex, revokedAt: pki.now.toISOString().replace(/\.\d+Z$/, '.000Z'), reason: 'superseded' }]);
    assert.equal(items[2]!.note, 'a private key (not shown)');
    const human = formatDescription(items);
    assert.ok(!human.includes(leaf.keyPem.split('\n')[1]!));
    assert.equal((describePem(leaf.der, pki.now)[0] as Record<string, unknown>).kind, 'certificate');
    assert.equal((describePem(crl, pki.now)[0] as Record<string, unknown>).kind, 'crl');
    assert.equal((describePem(csr, pki.now)[0] as Record<string, unknown>).kind, 'certificate request');
  });

  it('refuses junk, empty input and truncated PEM with invalid_argument', () => {
    const refused = (input: Buffer) => () => describePem(input, pki.now);
    const isInvalid = (err: unknown) => err instanceof MeshwardError && err.code === 'invalid_argument';
    assert.throws(refused(Buffer.alloc(0)), isInvalid);
    assert.throws(refused(Buffer.from([0x30, 0x03, 1, 2, 3])), isInvalid);
    assert.throws(refused(Buffer.from(leaf.pem.slice(0, 200))), isInvalid);
  });

  it('formats durations with their two largest units', () => {
    assert.equal(describeDuration(0), '0s');
    assert.equal(describeDuration(59_000), '59s');
    assert.equal(describeDuration(3_600_000), '1h');
    assert.equal(describeDuration(3_661_000), '1h 1m');
    assert.equal(describeDuration(10 * 86_400_000 + 5_000), '10d');
    assert.equal(describeDuration(-(2 * 86_400_000 + 3 * 3_600_000)), '2d 3h');
  });
});
