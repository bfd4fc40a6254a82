// Rule by rule, on real certificates issued by an Authority: RFC 5280 (serials, key identifiers, basic
// constraints, path lengths, name constraints, key usage, validity) and the SPIFFE X509-SVID profile
// (exactly one URI SAN on a leaf, cA=false, digitalSignature and no certificate/CRL signing on a leaf).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { parseCertificate, verifyCertificateSignature, type ParsedCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { isSpiffeId } from '../../src/pki/spiffe.js';
import { HOUR, T0 } from './fixtures.js';
import { useAuthority, withAuthority } from '../support/ca-authority.js';

/** The serial INTEGER's content octets, read with forge (a decoder independent of pki/). */
function rawSerial(cert: ParsedCertificate): Buffer {
  const tbs = forge.asn1.fromDer(forge.util.createBuffer(cert.tbsDer.toString('binary')));
  const fields = tbs.value as forge.asn1.Asn1[];
  const serial = fields[0]!.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? fields[1]! : fields[0]!;
  assert.equal(serial.type, forge.asn1.Type.INTEGER);
  return Buffer.from(serial.value as string, 'binary');
}

function oids(cert: ParsedCertificate): string[] {
  return cert.extensions.map((e) => e.oid);
}

describe('issued certificates against RFC 5280 and the X509-SVID profile', () => {
  let root: ParsedCertificate;
  let intermediate: ParsedCertificate;
  let leaves: ParsedCertificate[];
  const now = new Date(T0.getTime() + HOUR);
  const fx = useAuthority({}, T0);
  before(async () => {
    const chain = (await fx.ca.issue({ spiffeId: 'spiffe://example.org/ns/a/sa/first' }, now)).chainDer;
    intermediate = parseCertificate(chain[1]!);
    root = parseCertificate(decodePem(await fx.ca.trustBundlePem())[0]!.der);
    leaves = [];
    for (let i = 0; i < 40; i++) {
      leaves.push(parseCertificate((await fx.ca.issue({ spiffeId: `spiffe://example.org/ns/a/sa/w${i}`, ttlMs: HOUR }, now)).chainDer[0]!));
    }
  });

  it('uses X.509 v3 for every certificate', async () => {
    for (const c of [root, intermediate, ...leaves]) assert.equal(c.version, 3);
  });

  it('gives leaves positive serials of at most 20 octets with 128 random bits (RFC 5280 §4.1.2.2)', async () => {
    const seen = new Set<string>();
    for (const leaf of leaves) {
      const raw = rawSerial(leaf);
      assert.ok(raw.length <= 20, `serial of ${raw.length} octets`);
      assert.ok(raw[0]! < 0x80, 'serial must be positive');
      assert.ok(!(raw[0] === 0 && raw[1]! < 0x80), 'serial must be minimally encoded');
      const magnitude = raw[0] === 0 ? raw.subarray(1) : raw;
      assert.equal(magnitude.length, 16, '128-bit serial');
      assert.equal(leaf.serialHex, magnitude.toString('hex'));
      assert.equal(new X509Certificate(leaf.der).serialNumber.toLowerCase().replace(/^0+/, ''), leaf.serialHex.replace(/^0+/, ''));
      seen.add(leaf.serialHex);
    }
    assert.equal(seen.size, leaves.length, 'serials are unique');
    // At least 64 random bits: across 40 serials, every one of the 128 bit positions takes both values
    // somewhere except with negligible probability, and the top bit varies too (no fixed prefix).
    const bitsSeen = new Set<string>();
    for (const leaf of leaves) {
      const m = Buffer.from(leaf.serialHex, 'hex');
      for (let bit = 0; bit < 128; bit++) bitsSeen.add(`${bit}:${(m[bit >> 3]! >> (7 - (bit & 7))) & 1}`);
    }
    assert.ok(bitsSeen.size >= 2 * 120, `only ${bitsSeen.size / 2} of 128 serial bit positions vary`);
  });

  it('gives CA certificates positive serials of at most 20 octets too', async () => {
    for (const c of [root, intermediate]) {
      const raw = rawSerial(c);
      assert.ok(raw.length <= 20 && raw[0]! < 0x80);
    }
  });

  it('puts a subject key identifier in every certificate and chains authority key identifiers to it (§4.2.1.1, §4.2.1.2)', async () => {
    for (const c of [root, intermediate, ...leaves]) assert.ok(c.subjectKeyId && c.subjectKeyId.length > 0, 'SKI present');
    assert.deepEqual(intermediate.authorityKeyId, root.subjectKeyId);
    for (const leaf of leaves) assert.deepEqual(leaf.authorityKeyId, intermediate.subjectKeyId);
    if (root.authorityKeyId) assert.deepEqual(root.authorityKeyId, root.subjectKeyId);
    for (const c of [root, intermediate, ...leaves]) {
      assert.equal(c.extensions.find((e) => e.oid === '2.5.29.14')?.critical, false, 'SKI is not critical');
      const aki = c.extensions.find((e) => e.oid === '2.5.29.35');
      if (aki) assert.equal(aki.critical, false, 'AKI is not critical');
    }
  });

  it('chains issuer names and signatures: root self-signed, intermediate by root, leaves by intermediate', async () => {
    assert.deepEqual(root.issuerDer, root.subjectDer);
    assert.ok(verifyCertificateSignature(root, root.publicKey));
    assert.deepEqual(intermediate.issuerDer, root.subjectDer);
    assert.ok(verifyCertificateSignature(intermediate, root.publicKey));
    for (const leaf of leaves) {
      assert.deepEqual(leaf.issuerDer, intermediate.subjectDer);
      assert.ok(verifyCertificateSignature(leaf, intermediate.publicKey));
    }
  });

  it('marks basicConstraints critical everywhere: root cA with pathLen 1, intermediate cA with pathLen 0, leaves cA=false', async () => {
    assert.equal(root.isCA, true);
    assert.equal(root.pathLen, 1);
    assert.equal(intermediate.isCA, true);
    assert.equal(intermediate.pathLen, 0);
    for (const c of [root, intermediate, ...leaves]) assert.equal(c.basicConstraintsCritical, true);
    for (const leaf of leaves) {
      assert.equal(leaf.isCA, false);
      assert.equal(leaf.pathLen, undefined);
    }
  });

  it('gives CA certificates keyCertSign and cRLSign only, critical, and no extended key usage', async () => {
    for (const c of [root, intermediate]) {
      assert.deepEqual([...c.keyUsageNames].sort(), ['cRLSign', 'keyCertSign']);
      assert.equal(c.keyUsageCritical, true);
      assert.deepEqual(c.extKeyUsageOids, []);
      assert.deepEqual(c.uris, [], 'CA certificates carry no SPIFFE ID');
      assert.notEqual(c.subjectString, '', 'CA certificates have a subject (§4.1.2.6)');
    }
  });

  it('gives leaves digitalSignature (critical), never keyCertSign or cRLSign, and serverAuth + clientAuth (X509-SVID §4.3, §4.4)', async () => {
    for (const leaf of leaves) {
      assert.deepEqual(leaf.keyUsageNames, ['digitalSignature']);
      assert.equal(leaf.keyUsageCritical, true);
      assert.deepEqual([...leaf.extKeyUsage].sort(), ['clientAuth', 'serverAuth']);
    }
  });

  it('gives every leaf exactly one URI SAN, a valid SPIFFE ID in the trust domain, and a critical SAN when the subject is empty', async () => {
    for (const leaf of leaves) {
      assert.equal(leaf.uris.length, 1);
      assert.ok(isSpiffeId(leaf.uris[0]!));
      assert.ok(leaf.uris[0]!.startsWith('spiffe://example.org/'));
      assert.equal(leaf.subjectString, '');
      assert.equal(leaf.subjectAltNameCritical, true);
    }
  });

  it('constrains the intermediate to URIs of the trust domain (critical nameConstraints, host form)', async () => {
    assert.deepEqual(intermediate.permittedUriDomains, ['example.org']);
    assert.equal(intermediate.extensions.find((e) => e.oid === '2.5.29.30')?.critical, true);
    assert.deepEqual(root.permittedUriDomains, []);
  });

  it('never repeats an extension in one certificate (§4.2)', async () => {
    for (const c of [root, intermediate, ...leaves]) assert.equal(new Set(oids(c)).size, oids(c).length);
  });

  it('backdates notBefore by one minute and ends at now + TTL', async () => {
    for (const leaf of leaves) {
      assert.equal(leaf.notBefore.getTime(), now.getTime() - 60_000);
      assert.equal(leaf.notAfter.getTime(), now.getTime() + HOUR);
    }
    assert.equal(root.notBefore.getTime(), T0.getTime() - 60_000);
    assert.equal(intermediate.notBefore.getTime(), T0.getTime() - 60_000);
    assert.ok(intermediate.notAfter.getTime() <= root.notAfter.getTime(), 'the intermediate ends before its root');
    assert.equal(intermediate.notAfter.getTime() - T0.getTime(), 8760 * HOUR);
  });

  it('clamps a leaf to its issuer: notAfter never passes the intermediate notAfter', async () => {
    await withAuthority({ intermediateTtlMs: 25 * HOUR }, T0, async (short) => {
      const late = new Date(T0.getTime() + 10 * HOUR);
      const issued = await short.ca.issue({ spiffeId: 'spiffe://example.org/late', ttlMs: 24 * HOUR }, late);
      const leaf = parseCertificate(issued.chainDer[0]!);
      const issuer = parseCertificate(issued.chainDer[1]!);
      assert.equal(issuer.notAfter.getTime(), T0.getTime() + 25 * HOUR);
      assert.equal(leaf.notAfter.getTime(), issuer.notAfter.getTime());
      assert.equal(issued.notAfter.getTime(), issuer.notAfter.getTime());
    });
  });

  it('signs with the algorithm matching the issuer key (ecdsa-with-SHA256 for P-256)', async () => {
    for (const c of [root, intermediate, ...leaves]) assert.equal(c.signatureAlgorithmOid, '1.2.840.10045.4.3.2');
  });
});
