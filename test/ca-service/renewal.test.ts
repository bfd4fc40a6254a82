// Renewal over mTLS: the caller's current certificate, presented as the TLS client certificate, is the
// credential. Valid → a new certificate for the same identity; revoked by the CLI while the server runs →
// PERMISSION_DENIED at once; expired → refused with a message that says to bootstrap again. Also the
// per-identity rate limit (RESOURCE_EXHAUSTED).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { RateLimiter } from '../../src/ca/server/rate-limit.js';
import { runCli } from '../support/cli.js';
import { useCa } from '../support/ca-fixture.js';
import { TD, assertSignRefused, clientFor, csrFor, trySign } from './harness.js';

const ID = `spiffe://${TD}/ns/shop/sa/frontend`;

async function issue(dir: string, spiffeId: string, ttlMs: number): Promise<{ keyPem: string; chainPem: string; serialHex: string }> {
  const a = await Authority.open(dir);
  try {
    const issued = await a.issue({ spiffeId, ttlMs }, new Date());
    return { keyPem: issued.privateKeyPem, chainPem: issued.chainPem, serialHex: issued.serialHex };
  } finally {
    await a.close();
  }
}

describe('renewal over mTLS', () => {
  const ca = useCa({ inProcess: { options: { signRateLimit: { ratePerSecond: 0.01, burst: 3 } } } });

  it('renews with a valid certificate and no token', async () => {
    const current = await issue(ca.dir, ID, 600_000);
    const client = clientFor(ca.server, ca.dir, current);
    try {
      const r = await trySign(client, { csr: csrFor(ID).csr, ttlSeconds: 300 });
      assert.ok(r.ok, JSON.stringify(r));
      const leaf = parseCertificate(r.res.certChain[0]!);
      assert.deepEqual(leaf.uris, [ID]);
      assert.notEqual(leaf.serialHex, current.serialHex);
      const other = await trySign(client, { csr: csrFor(`spiffe://${TD}/ns/shop/sa/admin`).csr });
      assert.equal(!other.ok && other.code, grpc.status.PERMISSION_DENIED, 'a certificate renews only its own identity');
    } finally {
      client.close();
    }
  });

  it('refuses a certificate revoked by the CLI while the server runs (PERMISSION_DENIED), writing nothing', async () => {
    const current = await issue(ca.dir, `spiffe://${TD}/ns/shop/sa/revoked`, 600_000);
    const revoke = await runCli(['cert', 'revoke', '--ca-dir', ca.dir, '--serial', current.serialHex, '--reason', 'keyCompromise']);
    assert.equal(revoke.code, 0, revoke.stderr);
    await assertSignRefused(ca.server, ca.dir, { csr: csrFor(`spiffe://${TD}/ns/shop/sa/revoked`).csr }, { code: grpc.status.PERMISSION_DENIED, reason: /revoked/ }, current);
  });

  it('refuses an expired certificate and says to bootstrap again', async () => {
    const current = await issue(ca.dir, `spiffe://${TD}/ns/shop/sa/late`, 1000);
    await new Promise((r) => setTimeout(r, 2000));
    await assertSignRefused(ca.server, ca.dir, { csr: csrFor(`spiffe://${TD}/ns/shop/sa/late`).csr }, { code: grpc.status.UNAUTHENTICATED, reason: /bootstrap again with a new token/ }, current);
  });

  it('rate-limits Sign per identity (RESOURCE_EXHAUSTED), other identities unaffected', async () => {
    const busy = await issue(ca.dir, `spiffe://${TD}/ns/batch/sa/loop`, 600_000);
    const client = clientFor(ca.server, ca.dir, busy);
    try {
      const codes: (grpc.status | 'ok')[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await trySign(client, { csr: csrFor(`spiffe://${TD}/ns/batch/sa/loop`).csr });
        codes.push(r.ok ? 'ok' : r.code);
      }
      assert.deepEqual(codes, ['ok', 'ok', 'ok', grpc.status.RESOURCE_EXHAUSTED]);
    } finally {
      client.close();
    }
    const calm = await issue(ca.dir, `spiffe://${TD}/ns/batch/sa/calm`, 600_000);
    const other = clientFor(ca.server, ca.dir, calm);
    try {
      assert.ok((await trySign(other, { csr: csrFor(`spiffe://${TD}/ns/batch/sa/calm`).csr })).ok);
    } finally {
      other.close();
    }
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 3 });
    const t0 = 1_000_000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a', t0)), [true, true, true, false]);
    assert.equal(limiter.take('b', t0), true);
    assert.equal(limiter.take('a', t0 + 400), false);
    assert.equal(limiter.take('a', t0 + 500), true);
    assert.equal(limiter.take('a', t0 + 10_000), true);
    assert.throws(() => new RateLimiter({ ratePerSecond: 0, burst: 1 }));
  });
});
