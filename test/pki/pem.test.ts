// PEM: strict blocks (matching labels, clean base64, nothing truncated), tolerant surroundings.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshwardError } from '../../src/errors.js';
import { decodePem, encodePem, readDerOrPem } from '../../src/pki/pem.js';

const isInvalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof MeshwardError && err.code === 'invalid_argument' && pattern.test(err.message);

describe('PEM', () => {
  it('round-trips any bytes under any label, several blocks in order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.stringMatching(/^[A-Z][A-Z0-9 ]{0,20}[A-Z0-9]$/), fc.uint8Array({ minLength: 1, maxLength: 500 })), { minLength: 1, maxLength: 4 }), (blocks) => {
        const text = blocks.map(([label, der]) => encodePem(label, Buffer.from(der))).join('');
        const back = decodePem(text);
        assert.deepEqual(back.map((b) => [b.label, b.der]), blocks.map(([label, der]) => [label, Buffer.from(der)]));
        for (const line of text.split('\n')) assert.ok(line.length <= 64);
      }),
      { numRuns: 100 },
    );
  });

  it('accepts CRLF line ends and explanatory text around blocks (openssl x509 -text output)', () => {
    const der = randomBytes(100);
    const text = `Certificate:\n    Data: ...\n${encodePem('CERTIFICATE', der)}trailing words\n`.replace(/\n/g, '\r\n');
    assert.deepEqual(decodePem(text), [{ label: 'CERTIFICATE', der }]);
  });

  const refusals: [string, string, RegExp][] = [
    ['no block', 'just text', /No PEM block found/],
    ['empty', '', /No PEM block found/],
    ['missing END (truncated)', encodePem('CERTIFICATE', randomBytes(90)).split('\n').slice(0, 2).join('\n'), /no END line: the file is truncated/],
    ['mismatched END', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n', /ends with "END X509 CRL"/],
    ['bad base64', '-----BEGIN CERTIFICATE-----\nAA*A\n-----END CERTIFICATE-----\n', /invalid base64/],
    ['truncated base64', '-----BEGIN CERTIFICATE-----\nAAAAA\n-----END CERTIFICATE-----\n', /truncated base64/],
    ['empty body', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', /no base64 content/],
    ['nested BEGIN', '-----BEGIN CERTIFICATE-----\nAAAA\n-----BEGIN CERTIFICATE-----\n', /not closed/],
    ['headers', '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n', /headers/],
    ['malformed header', '-----BEGIN certificate-----\nAAAA\n-----END certificate-----\n', /Malformed PEM header/],
    ['data after padding', '-----BEGIN X-----\nAA==\nAAAA\n-----END X-----\n', /after the base64 padding/],
  ];
  for (const [name, text, rule] of refusals) {
    it(`refuses ${name}`, () => assert.throws(() => decodePem(text), isInvalid(rule)));
  }

  it('readDerOrPem returns the blocks with the label, or DER as is', () => {
    const a = randomBytes(50);
    const b = randomBytes(60);
    const text = Buffer.from(encodePem('CERTIFICATE', a) + encodePem('X509 CRL', b));
    assert.deepEqual(readDerOrPem(text, 'X509 CRL'), [b]);
    const der = Buffer.concat([Buffer.from([0x30, 0x03]), randomBytes(3)]);
    assert.deepEqual(readDerOrPem(der, 'CERTIFICATE'), [der]);
    assert.throws(() => readDerOrPem(text, 'CERTIFICATE REQUEST'), isInvalid(/No "CERTIFICATE REQUEST" PEM block/));
    assert.throws(() => readDerOrPem(Buffer.from('hello'), 'CERTIFICATE'), isInvalid(/neither PEM nor DER/));
    assert.throws(() => readDerOrPem(Buffer.alloc(0), 'CERTIFICATE'), isInvalid(/empty/));
  });
});
