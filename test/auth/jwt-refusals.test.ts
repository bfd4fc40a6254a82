// Hostile and broken JWTs, each refused with its reason and an RFC 6750 Bearer challenge: alg none in any
// case, HS256 keyed with the issuer's RSA or EC public key, expired, nbf/iat in the future (beyond the 60 s
// leeway), no exp, wrong or missing aud, wrong iss, unknown or hostile kid, tampered payload, unknown crit,
// headers naming their own key (jku, x5u, jwk, x5c), the wrong certificate binding. Valid tokens from ES256,
// RS256 and EdDSA issuers pass, with scopes from a string or an array claim.
import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { keySetFromJwks } from '../../src/auth/jwks.js';
import { JwtVerifier } from '../../src/auth/jwt.js';
import type { AuthRequest, AuthVerdict, Peer, RefusalReason } from '../../src/auth/verdict.js';
import { AUDIENCE, b64url, expectRefused, ISSUER, makeIssuer, NOW, NOW_S, request, signToken, type TestIssuer } from './helpers.js';

const es = makeIssuer('ES256', 'es-1');
const rs = makeIssuer('RS256', 'rs-1');
const ed = makeIssuer('EdDSA', 'ed-1');
const SCP_ISSUER = 'https://login.example.net/tenant';
const BOUND_ISSUER = 'https://bound.example.com';
const CERT_DER = Buffer.from('a client certificate DER stands in here');
const CERT_SHA256 = createHash('sha256').update(CERT_DER).digest();

function verifier(): JwtVerifier {
  const v = new JwtVerifier([
    { issuer: ISSUER, audiences: [AUDIENCE, 'other-api'], algorithms: ['ES256', 'RS256', 'EdDSA'] },
    { issuer: SCP_ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], scopeClaim: 'scp' },
    { issuer: BOUND_ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], requireCertBound: true },
  ]);
  v.setKeys(ISSUER, keySetFromJwks({ keys: [...es.jwks.keys, ...rs.jwks.keys, ...ed.jwks.keys] }, 'jwks.json'));
  v.setKeys(SCP_ISSUER, keySetFromJwks(es.jwks, 'scp-jwks.json'));
  v.setKeys(BOUND_ISSUER, keySetFromJwks(es.jwks, 'bound-jwks.json'));
  return v;
}

const bearer = (token: string, peer?: Peer): AuthRequest => request({ headers: { authorization: `Bearer ${token}` }, ...(peer ? { peer } : {}) });
const check = (token: string, peer?: Peer) => verifier().check(bearer(token, peer), NOW);

/** A token with any header and payload and the signature `sign` makes over header.payload. */
function rawToken(header: Record<string, unknown>, payload: Record<string, unknown>, sign: (input: string) => Buffer | string = () => ''): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = sign(input);
  return `${input}.${typeof sig === 'string' ? sig : sig.toString('base64url')}`;
}
const claims = (over: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: 'client-7', scope: 'orders:read', iat: NOW_S, exp: NOW_S + 600, ...over });
const pem = (i: TestIssuer) => i.publicKey.export({ format: 'pem', type: 'spki' }) as string;

describe('JWT: accepted', () => {
  it('ES256, RS256 and EdDSA tokens of the issuer, principal jwt:<iss>#<sub>, scopes from the scope string', async () => {
    for (const issuer of [es, rs, ed]) {
      const v = await check(await signToken(issuer));
      assert.ok(v.ok, v.ok ? '' : `${issuer.alg}: ${v.message}`);
      assert.equal(v.kind, 'jwt');
      assert.equal(v.principal, `jwt:${ISSUER}#client-7`);
      assert.deepEqual(v.scopes, ['orders:read', 'orders:write']);
    }
  });

  it('scopes from an array claim (scp), an aud array holding a configured audience, sub with spaces percent-encoded', async () => {
    const v = await check(await signToken(es, { iss: SCP_ISSUER, scope: undefined, scp: ['a:read', 'b:write'], aud: ['x', AUDIENCE], sub: 'user one%' }));
    assert.ok(v.ok, v.ok ? '' : v.message);
    assert.deepEqual(v.scopes, ['a:read', 'b:write']);
    assert.equal(v.principal, `jwt:${SCP_ISSUER}#user%20one%25`);
  });

  it('within the 60 s leeway: exp 59 s ago, nbf and iat 59 s ahead', async () => {
    assert.ok((await check(await signToken(es, { exp: NOW_S - 59 }))).ok);
    assert.ok((await check(await signToken(es, { nbf: NOW_S + 59, iat: NOW_S + 59 }))).ok);
  });

  it('a token signed with node:crypto (JWS ES256, raw r||s) verifies: the hand-made tokens below are real ones', async () => {
    const token = rawToken({ alg: 'ES256', kid: es.kid }, claims(), (i) => sign('sha256', Buffer.from(i), { key: es.privateKey, dsaEncoding: 'ieee-p1363' }));
    assert.ok((await check(token)).ok);
  });

  it('a certificate-bound token over the connection of that certificate', async () => {
    const token = await signToken(es, { iss: BOUND_ISSUER, cnf: { 'x5t#S256': CERT_SHA256.toString('base64url') } });
    assert.ok((await check(token, { certificateSha256: CERT_SHA256 })).ok);
  });
});

describe('JWT: refusals', () => {
  const attacker = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const attackerJwk = attacker.publicKey.export({ format: 'jwk' });
  const cases: [string, () => Promise<string> | string, RefusalReason, Peer?][] = [
    ['alg none', () => rawToken({ alg: 'none', typ: 'JWT' }, claims()), 'algorithm'],
    ['alg None', () => rawToken({ alg: 'None' }, claims()), 'algorithm'],
    ['alg NONE with a signature', () => rawToken({ alg: 'NONE' }, claims(), () => 'c2ln'), 'algorithm'],
    ['HS256 keyed with the issuer\'s RSA public key (PEM)', () => rawToken({ alg: 'HS256', kid: rs.kid }, claims(), (i) => createHmac('sha256', pem(rs)).update(i).digest()), 'algorithm'],
    ['HS256 keyed with the issuer\'s EC public key (PEM)', () => rawToken({ alg: 'HS256', kid: es.kid }, claims(), (i) => createHmac('sha256', pem(es)).update(i).digest()), 'algorithm'],
    ['HS512 keyed with the JWK text', () => rawToken({ alg: 'HS512' }, claims(), (i) => createHmac('sha512', JSON.stringify(es.jwks.keys[0])).update(i).digest()), 'algorithm'],
    ['expired 61 s ago', () => signToken(es, { exp: NOW_S - 61 }), 'expired'],
    ['nbf 61 s in the future', () => signToken(es, { nbf: NOW_S + 61 }), 'not_yet_valid'],
    ['iat 61 s in the future', () => signToken(es, { iat: NOW_S + 61 }), 'not_yet_valid'],
    ['no exp', () => signToken(es, { exp: undefined }), 'claims'],
    ['exp not a number', () => signToken(es, { exp: 'tomorrow' }), 'claims'],
    ['wrong aud', () => signToken(es, { aud: 'billing-api' }), 'audience'],
    ['no aud', () => signToken(es, { aud: undefined }), 'audience'],
    ['wrong iss', () => signToken(es, { iss: 'https://evil.example.com' }), 'issuer'],
    ['iss with a trailing slash (exact match only)', () => signToken(es, { iss: `${ISSUER}/` }), 'issuer'],
    ['no iss', () => signToken(es, { iss: undefined }), 'issuer'],
    ['unknown kid', () => signToken(es, {}, { kid: 'rotated-away' }), 'unknown_key'],
    ['hostile kid ../../etc/passwd', () => signToken(es, {}, { kid: '../../etc/passwd' }), 'unknown_key'],
    ['hostile kid __proto__', () => signToken(es, {}, { kid: '__proto__' }), 'unknown_key'],
    ['a 10 KB kid', () => signToken(es, {}, { kid: 'k'.repeat(10_240) }), 'unknown_key'],
    ['kid of an RSA key on an ES256 token', () => signToken(es, {}, { kid: rs.kid }), 'unknown_key'],
    ['kid not a string', () => signToken(es, {}, { kid: 7 }), 'malformed'],
    ['tampered payload (scope widened, signature kept)', async () => {
      const [h, , s] = (await signToken(es)).split('.');
      return `${h}.${b64url(JSON.stringify(claims({ scope: 'orders:read admin' })))}.${s}`;
    }, 'bad_signature'],
    ['signed by another key under the issuer\'s kid', () => new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: es.kid }).sign(attacker.privateKey), 'bad_signature'],
    ['an RS256 token for an issuer that allows only ES256', () => signToken(rs, { iss: SCP_ISSUER }), 'algorithm'],
    // jose refuses to sign this, so node:crypto signs it (JWS ES256: raw r||s).
    ['unknown crit', () => rawToken({ alg: 'ES256', kid: es.kid, crit: ['x-meshward-test'], 'x-meshward-test': 1 }, claims(), (i) => sign('sha256', Buffer.from(i), { key: es.privateKey, dsaEncoding: 'ieee-p1363' })), 'forbidden_header'],
    ['jku pointing elsewhere', () => signToken(es, {}, { jku: 'https://attacker.example/jwks.json' }), 'forbidden_header'],
    ['x5u pointing elsewhere', () => signToken(es, {}, { x5u: 'https://attacker.example/cert.pem' }), 'forbidden_header'],
    ['an embedded jwk of the attacker\'s key, signed by it', () => new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: es.kid, jwk: attackerJwk }).sign(attacker.privateKey), 'forbidden_header'],
    ['an embedded x5c chain', () => signToken(es, {}, { x5c: ['MIIB'] }), 'forbidden_header'],
    ['no sub', () => signToken(es, { sub: undefined }), 'claims'],
    ['a scope claim that is a number', () => signToken(es, { scope: 7 }), 'claims'],
    ['a bound token over another certificate', () => signToken(es, { iss: BOUND_ISSUER, cnf: { 'x5t#S256': CERT_SHA256.toString('base64url') } }), 'binding', { certificateSha256: createHash('sha256').update('another').digest() }],
    ['a bound token without a client certificate', () => signToken(es, { cnf: { 'x5t#S256': CERT_SHA256.toString('base64url') } }), 'binding'],
    ['an unbound token where the issuer requires binding', () => signToken(es, { iss: BOUND_ISSUER }), 'binding', { certificateSha256: CERT_SHA256 }],
    ['a cnf.x5t#S256 that is not a SHA-256', () => signToken(es, { cnf: { 'x5t#S256': 'abc' } }), 'claims'],
    ['not a JWT', () => 'not-a-token', 'malformed'],
    ['a header that is not base64url JSON', () => `${b64url('{"alg":')}.${b64url('{}')}.`, 'malformed'],
    ['longer than 16 KiB', () => 'a'.repeat(17_000), 'malformed'],
  ];
  for (const [name, make, reason, peer] of cases) {
    it(`${name} → ${reason}`, async () => {
      const refused = expectRefused(await check(await make(), peer), reason);
      assert.equal(refused.kind, 'jwt');
      assert.match(refused.wwwAuthenticate, /^Bearer realm="meshward", error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$/);
    });
  }

  let token: string;
  before(async () => { token = await signToken(es); });
  const requestCases: [string, () => AuthRequest, RefusalReason, RegExp][] = [
    ['no bearer token', () => request(), 'missing', /^Bearer realm="meshward"$/],
    ['two bearer tokens', () => request({ headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] } }), 'ambiguous', /error="invalid_request"/],
    ['a bearer token and a second authorization line of another scheme', () => request({ headers: { authorization: ['Signature keyId="k"', `Bearer ${token}`] } }), 'ambiguous', /error="invalid_request"/],
    ['a token in the query string', () => request({ query: `access_token=${token}` }), 'in_query', /error="invalid_request"/],
  ];
  for (const [name, make, reason, challenge] of requestCases) {
    it(`${name} → ${reason}`, async () => {
      const refused = expectRefused(await verifier().check(make(), NOW), reason);
      assert.match(refused.wwwAuthenticate, challenge);
    });
  }

  it('keys not loaded yet → keys_unavailable', async () => {
    const v = new JwtVerifier([{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'] }]);
    expectRefused(await v.check(bearer(await signToken(es)), NOW), 'keys_unavailable');
  });
});

describe('JWT: the verdict of a refusal never holds the token', () => {
  it('messages name claims and reasons only', async () => {
    const token = await signToken(es, { aud: 'billing-api' });
    const v: AuthVerdict = await check(token);
    assert.ok(!v.ok && !v.message.includes(token.split('.')[1]!) && !v.wwwAuthenticate.includes(token.split('.')[2]!));
  });
});
