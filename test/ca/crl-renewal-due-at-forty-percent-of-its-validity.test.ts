// When ca serve writes a new CRL (the pure decision in crl-publisher.ts): none stored, a revocation it
// does not cover, or 40% of its validity passed (so it is renewed before half, even with a missed check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crlNeedsWrite, crlRenewalTime } from '../../src/ca/server/crl-publisher.js';
import type { StoredCrl } from '../../src/ca/store/store.js';

const written = new Date('2026-01-01T00:00:00Z');
const crl: StoredCrl = {
  pem: '', crlNumber: 4n, thisUpdate: new Date(written.getTime() - 60_000), nextUpdate: new Date(written.getTime() + 100_000),
  revocations: 3n, generation: 7n, writtenAt: written,
};
const at = (ms: number) => new Date(written.getTime() + ms);

test('renewal time: 40% of the time from writing to nextUpdate', () => {
  assert.equal(crlRenewalTime(crl).getTime(), at(40_000).getTime());
});

const cases: [string, StoredCrl | undefined, bigint, Date, ReturnType<typeof crlNeedsWrite>][] = [
  ['no CRL stored', undefined, 0n, at(0), 'missing'],
  ['a fresh CRL covering every revocation', crl, 3n, at(1_000), undefined],
  ['just before 40%', crl, 3n, at(39_999), undefined],
  ['at 40%', crl, 3n, at(40_000), 'due'],
  ['past its nextUpdate', crl, 3n, at(200_000), 'due'],
  ['a revocation it does not cover', crl, 4n, at(1_000), 'stale'],
  ['a revocation it does not cover, also due', crl, 4n, at(50_000), 'stale'],
];
for (const [what, stored, revocations, now, expected] of cases) {
  test(`${what}: ${expected ?? 'nothing to write'}`, () => {
    assert.equal(crlNeedsWrite(stored, revocations, now), expected);
  });
}
