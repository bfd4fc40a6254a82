// JWT bearer tokens end to end, signed here (jose, and by hand for tokens jose will not make): a valid token
// passes with its principal and scopes and is not forwarded; every hostile or broken token is refused with
// its reason: alg none in any case, HS256 keyed with the public key, expired, nbf in the future, no exp,
// wrong aud or iss, unknown or hostile kid, tampered payload, unknown crit, a jku pointing to a server that
// must never be asked, a token in the query string; cnf.x5t#S256 binds a token to the caller's certificate.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, sign, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { AUDIENCE, curl, ISSUER, makeIssuer, seen, startCredentialSidecar, type CredentialSidecar, type Issuer } from './harness.js';

let t: CredentialSidecar;
let issuer: Issuer;
let jkuHits = 0;
const jku = createServer((_req, res) => {
  jkuHits++;
  res.end('{"keys":[]}');
});

before(async () => {
  await new Promise<void>((r) => jku.listen(0, '127.0.0.1', r));
  issuer = await makeIssuer();
  // No API keys here: an empty key file (one holding no keys) is a valid one.
  t = await startCredentialSidecar({ issuer, async prepareKeys(file) {
    writeFileSync(file, '');
  } });
});
after(async () => {
  jku.closeAllConnections();
  jku.close();
  await t?.close();
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (over: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-reports', iat: now(), exp: now() + 600, scope: 'reports:read orders:read', ...over });

/** An ES256 JWS made by hand, so the header can say anything (crit, jku). */
function handSigned(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64({ alg: 'ES256', kid: issuer.kid, ...header })}.${b64(payload)}`;
  const sig = sign('sha256', Buffer.from(input), { key: issuer.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const bearer = (token: string) => ['-H', `authorization: Bearer ${token}`];

describe('JWT bearer tokens through the sidecar', () => {
  it('accepts a valid token: principal jwt:<iss>#<sub>, its scopes, no token for the app', async () => {
    const r = await curl(t, undefined, 'GET', '/token/1', bearer(await issuer.sign({})));
    assert.equal(r.status, 200, r.body);
    const app = seen(r);
    assert.equal(app.headers['x-mesh-principal'], `jwt:${ISSUER}#svc-reports`);
    assert.equal(app.headers['x-mesh-scopes'], 'orders:read reports:read');
    assert.equal(app.headers.authorization, undefined);
  });

  it('refuses every hostile token with its reason and a Bearer challenge', async () => {
    const publicPem = createPublicKey(issuer.privateKey).export({ type: 'spki', format: 'pem' });
    const hs256 = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: issuer.kid }).sign(Buffer.from(publicPem));
    const good = await issuer.sign({});
    const [h, , s] = good.split('.');
    const tampered = `${h}.${b64(claims({ sub: 'admin', scope: 'orders:read orders:write' }))}.${s}`;
    const jkuUrl = `http://127.0.0.1:${(jku.address() as AddressInfo).port}/jwks.json`;
    const rows: [string, string[], string, string][] = [
      ['alg none', bearer(`${b64({ alg: 'none' })}.${b64(claims())}.`), 'algorithm', 'invalid_token'],
      ['alg NoNe', bearer(`${b64({ alg: 'NoNe' })}.${b64(claims())}.`), 'algorithm', 'invalid_token'],
      ['HS256 keyed with the public key', bearer(hs256), 'algorithm', 'invalid_token'],
      ['expired', bearer(await issuer.sign({ exp: now() - 120 })), 'expired', 'invalid_token'],
      ['nbf in the future', bearer(await issuer.sign({ nbf: now() + 600 })), 'not_yet_valid', 'invalid_token'],
      ['no exp', bearer(handSigned({}, { ...claims(), exp: undefined })), 'claims', 'invalid_token'],
      ['wrong aud', bearer(await issuer.sign({ aud: 'billing-api' })), 'audience', 'invalid_token'],
      ['no aud', bearer(handSigned({}, { ...claims(), aud: undefined })), 'audience', 'invalid_token'],
      ['wrong iss', bearer(await issuer.sign({ iss: 'https://evil.example' })), 'issuer', 'invalid_token'],
      ['issuer with a trailing slash', bearer(await issuer.sign({ iss: `${ISSUER}/` })), 'issuer', 'invalid_token'],
      ['unknown kid', bearer(handSigned({ kid: 'k9' }, claims())), 'unknown_key', 'invalid_token'],
      ['hostile kid', bearer(handSigned({ kid: '../../etc/passwd' }, claims())), 'unknown_key', 'invalid_token'],
      ['__proto__ kid', bearer(handSigned({ kid: '__proto__' }, claims())), 'unknown_key', 'invalid_token'],
      ['tampered payload', bearer(tampered), 'bad_signature', 'invalid_token'],
      ['unknown crit', bearer(handSigned({ crit: ['x-meshward-test'], 'x-meshward-test': 1 }, claims())), 'forbidden_header', 'invalid_token'],
      ['jku pointing elsewhere', bearer(handSigned({ jku: jkuUrl }, claims())), 'forbidden_header', 'invalid_token'],
      ['not a JWT', bearer('not.a.jwt'), 'malformed', 'invalid_token'],
      ['a token in the query string', [], 'in_query', 'invalid_request'],
    ];
    for (const [what, args, code, error] of rows) {
      const path = what === 'a token in the query string' ? `/token/1?access_token=${good}` : '/token/1';
      const r = await curl(t, undefined, 'GET', path, args);
      assert.equal(r.status, 401, `${what}: ${r.body}`);
      assert.equal(r.json.code, code, `${what}: ${r.body}`);
      assert.match((r.headers['www-authenticate'] ?? []).join(' '), new RegExp(`^Bearer realm="meshward", error="${error}"`), what);
    }
    assert.equal(jkuHits, 0, 'the jku URL was never fetched');
    const missing = await curl(t, undefined, 'GET', '/token/1');
    assert.deepEqual(missing.headers['www-authenticate'], ['Bearer realm="meshward"']);
  });

  it('answers 403 naming the token that lacks the scope', async () => {
    const r = await curl(t, undefined, 'GET', '/token/1', bearer(await issuer.sign({ scope: 'reports:read' })));
    assert.equal(r.status, 403, r.body);
    assert.equal(r.json.reason, `the JWT (jwt:${ISSUER}#svc-reports) lacks scope orders:read`);
  });

  it('binds a cnf.x5t#S256 token to the certificate it names (RFC 8705)', async () => {
    const der = new X509Certificate(readFileSync(t.frontend.cert)).raw;
    const token = await issuer.sign({ cnf: { 'x5t#S256': createHash('sha256').update(der).digest('base64url') } });
    assert.equal((await curl(t, t.frontend, 'GET', '/token/1', bearer(token))).status, 200);
    for (const client of [undefined, t.stranger]) {
      const r = await curl(t, client, 'GET', '/token/1', bearer(token));
      assert.equal(r.status, 401, r.body);
      assert.equal(r.json.code, 'binding');
    }
  });
});
