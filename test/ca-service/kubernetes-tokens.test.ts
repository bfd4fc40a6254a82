// Kubernetes projected service-account tokens as a Sign credential: a JWKS made with jose, tokens with the
// wrong audience, expired, badly signed or from an unknown key are UNAUTHENTICATED; a good one yields
// spiffe://TD/ns/NS/sa/SA from the kubernetes.io claims, and the CSR must ask for exactly that.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { KubernetesTokenVerifier, identityFromKubernetesClaims, loadKubernetesAuthConfig } from '../../src/ca/jwt.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { useCa } from '../support/ca-fixture.js';
import { TD, assertSignRefused, clientFor, csrFor, removeDir, tempDir, trySign } from './harness.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SHOP_ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;

interface Signer { key: CryptoKey; kid: string; alg: string }

async function newSigner(kid: string, alg = 'RS256'): Promise<{ signer: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { signer: { key: privateKey, kid, alg }, jwk };
}

function serviceAccountJwt(s: Signer, claims: { aud?: string; iss?: string; exp?: number; ns?: string; sa?: string; sub?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const ns = claims.ns ?? 'shop';
  const sa = claims.sa ?? 'orders';
  return new SignJWT({ 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: '0d6f3c1e' }, pod: { name: `${sa}-0`, uid: 'a1' } } })
    .setProtectedHeader({ alg: s.alg, kid: s.kid })
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? 'meshward')
    .setSubject(claims.sub ?? `system:serviceaccount:${ns}:${sa}`)
    .setIssuedAt(now - 10)
    .setExpirationTime(claims.exp ?? now + 600)
    .sign(s.key);
}

describe('Kubernetes service-account tokens', () => {
  let good: Signer;
  let stranger: Signer;
  let impostor: Signer;
  const ca = useCa({
    prepare: async ({ dir }) => {
      const cluster = await newSigner('cluster-key-1');
      const es = await newSigner('cluster-key-2', 'ES256');
      good = cluster.signer;
      stranger = (await newSigner('not-in-jwks')).signer;
      // Same kid as the cluster's key, different key: a forged signature.
      impostor = { ...(await newSigner('cluster-key-1')).signer };
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [cluster.jwk, es.jwk] }));
      writeFileSync(join(dir, 'kubernetes.yaml'), `issuer: ${ISSUER}\njwks: jwks.json\n`);
    },
    inProcess: {},
  });

  it('reads kubernetes.yaml and refuses unknown keys in it', () => {
    const config = loadKubernetesAuthConfig(ca.dir);
    assert.deepEqual(config, { issuer: ISSUER, jwksFile: join(ca.dir, 'jwks.json'), audience: 'meshward' });
    const other = tempDir();
    try {
      writeFileSync(join(other, 'kubernetes.yaml'), `issuer: ${ISSUER}\njwks: x.json\naudiences: [a]\n`);
      assert.throws(() => loadKubernetesAuthConfig(other), /kubernetes\.yaml: audiences: unknown field \(did you mean "audience"\?\); valid fields here: issuer, jwks, audience/);
      assert.equal(loadKubernetesAuthConfig(join(other, 'nowhere')), undefined);
    } finally {
      removeDir(other);
    }
  });

  it('maps kubernetes.io claims to a SPIFFE ID and refuses tokens without them or with a contradicting sub', () => {
    assert.equal(identityFromKubernetesClaims({ 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } }, TD), `spiffe://${TD}/ns/a/sa/b`);
    assert.throws(() => identityFromKubernetesClaims({ sub: 'system:serviceaccount:a:b' }, TD), /no kubernetes\.io/);
    assert.throws(() => identityFromKubernetesClaims({ sub: 'system:serviceaccount:x:y', 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } }, TD), /does not name/);
  });

  const refusals: [string, () => Promise<string>, RegExp][] = [
    ['the wrong audience', () => serviceAccountJwt(good, { aud: 'vault' }), /audience/],
    ['an expired token', () => serviceAccountJwt(good, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
    ['a bad signature', () => serviceAccountJwt(impostor), /signature/],
    ['an unknown key', () => serviceAccountJwt(stranger), /no key/],
    ['the wrong issuer', () => serviceAccountJwt(good, { iss: 'https://evil.example' }), /issuer/],
    ['a token with no signature (alg none)', async () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`, /not a valid JWT|not allowed/],
  ];
  for (const [what, make, reason] of refusals) {
    it(`refuses ${what} with UNAUTHENTICATED and writes nothing`, async () => {
      await assertSignRefused(ca.server, ca.dir, { csr: csrFor(SHOP_ORDERS).csr, token: await make() }, { code: grpc.status.UNAUTHENTICATED, reason });
    });
  }

  it('signs for the identity in the claims, and only for it', async () => {
    const client = clientFor(ca.server, ca.dir);
    try {
      const ok = await trySign(client, { csr: csrFor(SHOP_ORDERS).csr, token: await serviceAccountJwt(good) });
      assert.ok(ok.ok, JSON.stringify(ok));
      assert.deepEqual(parseCertificate(ok.res.certChain[0]!).uris, [SHOP_ORDERS]);
      const other = await trySign(client, { csr: csrFor(`spiffe://${TD}/ns/shop/sa/admin`).csr, token: await serviceAccountJwt(good) });
      assert.equal(!other.ok && other.code, grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('re-reads the JWKS file when the cluster rotates its keys', async () => {
    const verifier = new KubernetesTokenVerifier(loadKubernetesAuthConfig(ca.dir)!, TD);
    const rotated = await newSigner('cluster-key-3', 'ES256');
    await assert.rejects(verifier.verify(await serviceAccountJwt(rotated.signer), new Date()), /no key/);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(ca.dir, 'jwks.json'), JSON.stringify({ keys: [rotated.jwk] }));
    assert.equal(await verifier.verify(await serviceAccountJwt(rotated.signer, { ns: 'billing', sa: 'api' }), new Date()), `spiffe://${TD}/ns/billing/sa/api`);
  });
});
