// Malformed Sign requests: an empty, oversized, garbage or tampered CSR, a CSR with no SPIFFE ID, and
// impossible lifetimes are INVALID_ARGUMENT; none of them consumes the token or writes anything, and the
// CA keeps serving (a good request right after succeeds with the same token).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { createBootstrapToken } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import * as der from '../../src/pki/der.js';
import { MAX_CSR_BYTES } from '../../src/ca/server/sign.js';
import { join } from 'node:path';
import { useCa } from '../support/ca-fixture.js';
import { TD, assertSignRefused, clientFor, csrFor, trySign } from './harness.js';

const ID = `spiffe://${TD}/ns/shop/sa/frontend`;

describe('malformed Sign requests', () => {
  let token: string;
  const ca = useCa({
    prepare: async ({ dir }) => {
      const store = SqliteStore.open(join(dir, 'ca.db'));
      token = (await createBootstrapToken(store, ID, 600_000, new Date())).token;
      await store.close();
    },
    inProcess: {},
  });

  const tampered = (): Buffer => {
    const csr = Buffer.from(csrFor(ID).csr);
    csr[csr.length - 5] ^= 0x01; // inside the signature value
    return csr;
  };
  const otherKeysSignature = (): Buffer => {
    // The request info of one key with the signature made by another: the CSR does not prove possession.
    const [infoA, algA] = der.children(der.readRoot(csrFor(ID).csr));
    const [, , sigB] = der.children(der.readRoot(createCsr({ subject: {}, uris: [ID] }, generateKeyPair())));
    return der.sequence(der.bytesOf(infoA!), der.bytesOf(algA!), der.bytesOf(sigB!));
  };
  const cases: [string, () => { csr: Buffer; ttlSeconds?: number }, RegExp][] = [
    ['an empty CSR', () => ({ csr: Buffer.alloc(0) }), /csr is empty/],
    ['an oversized CSR', () => ({ csr: Buffer.concat([csrFor(ID).csr, Buffer.alloc(MAX_CSR_BYTES)]) }), /above the limit/],
    ['bytes that are not DER', () => ({ csr: Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nnot der') }), /CSR/],
    ['a CSR whose signature was altered', () => ({ csr: tampered() }), /signature|CSR/],
    ['a CSR signed by another key', () => ({ csr: otherKeysSignature() }), /signature/],
    ['a CSR without a SPIFFE ID', () => ({ csr: createCsr({ subject: { cn: 'x' }, dns: ['x.example.org'] }, generateKeyPair()) }), /URI SAN/],
    ['a negative ttl', () => ({ csr: csrFor(ID).csr, ttlSeconds: -5 }), /ttl_seconds/],
    ['a ttl above the maximum', () => ({ csr: csrFor(ID).csr, ttlSeconds: 30 * 24 * 3600 }), /maximum/],
  ];

  for (const [what, make, reason] of cases) {
    it(`refuses ${what} with INVALID_ARGUMENT and writes nothing`, async () => {
      await assertSignRefused(ca.server, ca.dir, { ...make(), token }, { code: grpc.status.INVALID_ARGUMENT, reason });
    });
  }

  it('keeps serving: the same token still works after every refusal', async () => {
    const client = clientFor(ca.server, ca.dir);
    try {
      const r = await trySign(client, { csr: csrFor(ID).csr, token, ttlSeconds: 120 });
      assert.ok(r.ok, JSON.stringify(r));
      assert.ok((await client.getTrustBundle(10_000)).roots.length >= 1);
    } finally {
      client.close();
    }
  });
});
