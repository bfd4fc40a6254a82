// Fuzz: mutated real DER (bit flips, truncations, insertions, deletions) of certificates, CSRs and CRLs, and
// mutated PEM text, fed to the parsers. They must return a value or throw MeshwardError, nothing else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshwardError } from '../../src/errors.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { parseCrl } from '../../src/pki/crl.js';
import { createCsr, parseCsr } from '../../src/pki/csr.js';
import { tlv } from '../../src/pki/der.js';
import { importPrivateKeyPem, importSpkiDer } from '../../src/pki/keys.js';
import { decodePem, encodePem } from '../../src/pki/pem.js';
import { crlDerFor, makeTestPki } from '../support/pki-fixtures.js';

const pki = makeTestPki();
const rsaPki = makeTestPki({ keyType: 'rsa-2048' });
const leaf = pki.leaf({ dns: ['a.example.org'], ips: ['10.0.0.1', '::1'] });
const samples = {
  certificate: [leaf.der, pki.intermediate.der, pki.root.der, rsaPki.leaf().der, pki.leaf({ shape: 'no-uri' }).der],
  csr: [
    createCsr({ subject: { cn: 'x', ou: ['y'] }, uris: ['spiffe://example.org/x'], dns: ['x.local'] }, leaf.keys),
    createCsr({ subject: {}, uris: ['spiffe://example.org/y'] }, rsaPki.leaf().keys),
  ],
  crl: [
    crlDerFor(pki.intermediate, [leaf], { now: pki.now, thisUpdate: pki.now, crlNumber: 7n }),
  ],
};

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'set'; at: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  // Length and tag bytes are where parsers break: set a byte to a boundary value.
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xff, 0x30, 0xa0, 0x1f) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at]! ^= 1 << m.bit;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case 'set':
        if (b.length > 0) b[at] = m.value;
        break;
    }
  }
  return b;
}

/** Runs a parser: a value or a MeshwardError is fine; anything else fails the property. */
function onlyMeshwardErrors(parse: (b: Buffer) => unknown, input: Buffer): boolean {
  try {
    parse(input);
    return true;
  } catch (err) {
    if (err instanceof MeshwardError && err.code === 'invalid_argument' && err.message.length > 0) return true;
    throw new Error(`parser threw a non-MeshwardError: ${String(err)}`, { cause: err });
  }
}

const PARSERS: Record<string, (b: Buffer) => unknown> = {
  certificate: parseCertificate,
  csr: parseCsr,
  crl: parseCrl,
};

describe('parsers under mutated DER', () => {
  for (const [kind, inputs] of Object.entries(samples)) {
    it(`${kind}: mutated ${kind} DER is parsed or refused with MeshwardError, by every parser`, () => {
      fc.assert(
        fc.property(fc.nat(inputs.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (which, mutations) => {
          const input = mutate(inputs[which]!, mutations);
          return Object.values(PARSERS).every((parse) => onlyMeshwardErrors(parse, input)) && onlyMeshwardErrors(importSpkiDer, input);
        }),
        { numRuns: 600 },
      );
    });
  }

  it('accepts the unmutated samples (so the properties above exercise real structure)', () => {
    for (const der of samples.certificate) assert.ok(parseCertificate(der).serialHex.length > 0);
    for (const der of samples.csr) assert.ok(parseCsr(der).uris.length === 1);
    for (const der of samples.crl) assert.equal(parseCrl(der).revoked.length, 1);
  });

  it('random bytes are refused with MeshwardError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        return Object.values(PARSERS).every((parse) => onlyMeshwardErrors(parse, b));
      }),
      { numRuns: 400 },
    );
  });

  it('deeply nested and huge declared lengths are refused, not crashed on', () => {
    let nested: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 2000; i++) nested = tlv(0x30, nested);
    const huge = Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00]);
    for (const parse of Object.values(PARSERS)) {
      assert.ok(onlyMeshwardErrors(parse, nested));
      assert.ok(onlyMeshwardErrors(parse, huge));
    }
  });
});

describe('PEM decoding under mutated text', () => {
  const text = encodePem('CERTIFICATE', leaf.der) + encodePem('X509 CRL', samples.crl[0]!) + leaf.keyPem;

  it('decodePem and importPrivateKeyPem return blocks or throw MeshwardError on mutated text', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const mutated = mutate(Buffer.from(text), mutations);
        onlyMeshwardErrors((b) => decodePem(b), mutated);
        onlyMeshwardErrors((b) => decodePem(b.toString('utf8')), mutated);
        onlyMeshwardErrors((b) => importPrivateKeyPem(b), mutated);
        return true;
      }),
      { numRuns: 600 },
    );
  });

  it('every block that decodes from mutated PEM goes through the parsers safely', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 2 }), (mutations) => {
        let blocks: { der: Buffer }[] = [];
        try {
          blocks = decodePem(mutate(Buffer.from(text), mutations));
        } catch (err) {
          if (!(err instanceof MeshwardError)) throw err;
        }
        return blocks.every((b) => Object.values(PARSERS).every((parse) => onlyMeshwardErrors(parse, b.der)));
      }),
      { numRuns: 300 },
    );
  });
});
