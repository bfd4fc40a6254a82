// CSRs: ours are accepted by `openssl req -verify`; OpenSSL's (EC and RSA, with a URI SAN) parse and
// verify; broken ones are refused with invalid_argument.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { createCsr, parseCsr, parseCsrAsync } from '../../src/pki/csr.js';
import { exportPrivateKeyPem, generateKeyPair, KEY_TYPES } from '../../src/pki/keys.js';
import { decodePem, encodePem } from '../../src/pki/pem.js';
import * as der from '../../src/pki/der.js';
import { openssl, tempDir } from './openssl-tool.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const isInvalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof MeshwardError && err.code === 'invalid_argument' && pattern.test(err.message);

describe('createCsr', () => {
  for (const keyType of KEY_TYPES) {
    it(`makes a ${keyType} CSR that openssl req -verify accepts and parseCsr reads back`, () => {
      const keys = generateKeyPair(keyType);
      const der = createCsr(
        { subject: { cn: 'orders', ou: ['shop', 'eu'], o: 'Example', c: 'US' }, uris: ['spiffe://example.org/ns/shop/sa/orders'], dns: ['orders.local'], ips: ['192.0.2.1', 'fe80::1'] },
        keys,
      );
      const file = join(tmp.dir, `${keyType}.csr`);
      writeFileSync(file, encodePem('CERTIFICATE REQUEST', der));
      const r = openssl(['req', '-verify', '-noout', '-in', file, '-text']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr + r.stdout, /verify OK/);
      assert.match(r.stdout, /URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/orders, DNS:orders\.local, IP Address:192\.0\.2\.1, IP Address:FE80:0:0:0:0:0:0:1/);
      const parsed = parseCsr(der);
      assert.equal(parsed.keyType, keyType);
      assert.deepEqual(parsed.subject, { cn: 'orders', ou: ['shop', 'eu'], o: 'Example', c: 'US' });
      assert.equal(parsed.subjectString, 'CN=orders,OU=shop,OU=eu,O=Example,C=US');
      assert.deepEqual(parsed.uris, ['spiffe://example.org/ns/shop/sa/orders']);
      assert.deepEqual(parsed.dns, ['orders.local']);
      assert.deepEqual(parsed.ips, ['192.0.2.1', 'fe80::1']);
      assert.ok(parsed.publicKey.export({ type: 'spki', format: 'der' }).equals(keys.publicKey.export({ type: 'spki', format: 'der' })));
    });
  }

  it('refuses a private key that does not match the public key', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    assert.throws(() => createCsr({ subject: { cn: 'x' } }, { privateKey: a.privateKey, publicKey: b.publicKey }), isInvalid(/does not match/));
  });
});

describe('parseCsr on CSRs made by openssl req', () => {
  const cases: [string, string[]][] = [
    ['EC P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['EC P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['RSA 2048', ['-newkey', 'rsa:2048']],
    ['Ed25519', ['-newkey', 'ed25519']],
  ];
  for (const [name, keyArgs] of cases) {
    it(`reads a ${name} CSR with a URI SAN and verifies its signature`, () => {
      const csrFile = join(tmp.dir, `${name.replace(/\W/g, '')}.csr`);
      const r = openssl([
        'req', '-new', ...keyArgs, '-nodes', '-keyout', `${csrFile}.key`, '-out', csrFile,
        '-subj', '/O=Example/OU=payments/CN=legacy batch',
        '-addext', 'subjectAltName=URI:spiffe://example.org/ns/pay/sa/batch,DNS:batch.pay.svc',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const [block] = decodePem(readFileSync(csrFile));
      const parsed = parseCsr(block!.der);
      assert.deepEqual(parsed.uris, ['spiffe://example.org/ns/pay/sa/batch']);
      assert.deepEqual(parsed.dns, ['batch.pay.svc']);
      assert.deepEqual(parsed.subject, { cn: 'legacy batch', ou: ['payments'], o: 'Example' });
      assert.equal(parsed.subjectString, 'CN=legacy batch,OU=payments,O=Example');
      assert.ok(parsed.requestedExtensions.includes('2.5.29.17'));
    });
  }

  it('refuses an openssl CSR with an RSA-1024 key, naming the rule', () => {
    const csrFile = join(tmp.dir, 'rsa1024.csr');
    const r = openssl(['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', `${csrFile}.key`, '-out', csrFile, '-subj', '/CN=weak', '-outform', 'DER']);
    assert.equal(r.status, 0, r.stderr);
    assert.throws(() => parseCsr(readFileSync(csrFile)), isInvalid(/1024 bits.*at least 2048/));
  });
});

describe('parseCsr refusals', () => {
  const keys = generateKeyPair('ec-p256');
  const good = createCsr({ subject: { cn: 'x' }, uris: ['spiffe://example.org/x'] }, keys);

  it('refuses a CSR whose signature has a flipped byte', () => {
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 0x01;
    assert.throws(() => parseCsr(bad), isInvalid(/CSR/));
  });

  it('refuses a CSR whose signed content was altered', () => {
    const bad = Buffer.from(good);
    const at = bad.indexOf(Buffer.from('spiffe://example.org/x'));
    bad[at + 'spiffe://example.org/'.length] = 'y'.charCodeAt(0);
    assert.throws(() => parseCsr(bad), isInvalid(/signature does not verify/));
  });

  it('refuses an RSA CSR with a flipped signature byte made by openssl', () => {
    const csrFile = join(tmp.dir, 'rsa-flip.csr');
    const r = openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${csrFile}.key`, '-out', csrFile, '-outform', 'DER', '-subj', '/CN=x', '-addext', 'subjectAltName=URI:spiffe://example.org/x']);
    assert.equal(r.status, 0, r.stderr);
    const der = readFileSync(csrFile);
    assert.deepEqual(parseCsr(der).uris, ['spiffe://example.org/x']);
    der[der.length - 1]! ^= 0x80;
    assert.throws(() => parseCsr(der), isInvalid(/signature does not verify/));
  });

  it('refuses truncated DER, trailing bytes, empty input and a certificate', () => {
    assert.throws(() => parseCsr(good.subarray(0, good.length - 1)), isInvalid(/CSR is malformed/));
    assert.throws(() => parseCsr(Buffer.concat([good, Buffer.from([0])])), isInvalid(/CSR is malformed/));
    assert.throws(() => parseCsr(Buffer.alloc(0)), isInvalid(/CSR is malformed/));
    assert.throws(() => parseCsr('text' as unknown as Buffer), isInvalid(/DER bytes/));
  });

  it('keeps the private key out of error messages', () => {
    const pem = exportPrivateKeyPem(keys.privateKey);
    try {
      parseCsr(Buffer.from(pem));
      assert.fail('expected a refusal');
    } catch (err) {
      assert.ok(err instanceof MeshwardError);
      assert.ok(!err.message.includes(pem.split('\n')[1]!));
    }
  });
});

// parseCsrAsync checks the signature on libuv's thread pool: it must accept and refuse exactly what parseCsr does.
describe('parseCsrAsync agrees with parseCsr', () => {
  const keys = generateKeyPair('ec-p256');
  const good = createCsr({ subject: { cn: 'x' }, uris: ['spiffe://example.org/x'], dns: ['x.local'] }, keys);
  const bothRefuse = async (bad: Buffer, pattern: RegExp) => {
    assert.throws(() => parseCsr(bad), isInvalid(pattern), 'parseCsr');
    await assert.rejects(parseCsrAsync(bad), isInvalid(pattern), 'parseCsrAsync');
  };

  for (const keyType of KEY_TYPES) {
    it(`reads a ${keyType} CSR exactly as parseCsr does`, async () => {
      const der = createCsr({ subject: { cn: 'orders' }, uris: ['spiffe://example.org/ns/shop/sa/orders'], ips: ['192.0.2.1'] }, generateKeyPair(keyType));
      const sync = parseCsr(der);
      const async = await parseCsrAsync(der);
      assert.deepEqual({ ...async, publicKey: undefined }, { ...sync, publicKey: undefined });
      assert.ok(async.publicKey.equals(sync.publicKey));
    });
  }

  it('refuses a CSR whose signed content was altered, like parseCsr', async () => {
    const bad = Buffer.from(good);
    const at = bad.indexOf(Buffer.from('spiffe://example.org/x'));
    bad[at + 'spiffe://example.org/'.length] = 'y'.charCodeAt(0);
    await bothRefuse(bad, /signature does not verify/);
  });

  it('refuses a CSR whose signature has a flipped byte, like parseCsr', async () => {
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 0x01;
    await bothRefuse(bad, /CSR/);
  });

  it('refuses a request carrying the signature of another request, like parseCsr', async () => {
    const other = createCsr({ subject: { cn: 'x' }, uris: ['spiffe://example.org/x'], dns: ['x.local'] }, generateKeyPair('ec-p256'));
    const parts = (csr: Buffer) => der.children(der.readRoot(csr)).map(der.bytesOf);
    const [info, algorithm] = parts(good);
    const [, , otherSignature] = parts(other);
    await bothRefuse(der.sequence(info!, algorithm!, otherSignature!), /signature does not verify/);
  });

  it('refuses malformed DER and a signature with unused bits, like parseCsr', async () => {
    await bothRefuse(good.subarray(0, good.length - 1), /CSR is malformed/);
    await bothRefuse(Buffer.alloc(0), /CSR is malformed/);
    // The signature BIT STRING's unused-bits octet set to 1: never a valid signature.
    const [info, algorithm, signature] = der.children(der.readRoot(good)).map(der.bytesOf);
    const content = der.contentOf(der.readRoot(signature!));
    const bits = der.sequence(info!, algorithm!, der.tlv(0x03, Buffer.from([1]), content.subarray(1)));
    await bothRefuse(bits, /CSR/);
  });
});
