// HMAC-signed requests (RFC 9421) end to end: signatures made by the Python signer in
// test/auth/fixtures/hmac_sign.py (hmac, hashlib: written independently of src/auth), sent with curl to a
// real sidecar. Accepted: the app gets the body unchanged and no signature headers. Refused, each with its
// reason: replay, body changed, digest recomputed by an attacker, created outside the window, body not
// covered, unknown keyid, wrong secret, a key without an HMAC secret, no signature, a body over maxBody.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKey, curl, headerArgs, makeIssuer, pythonSign, seen, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

let t: CredentialSidecar;
let signer: CreatedKey;
let plain: CreatedKey;
let authority = '';

before(async () => {
  t = await startCredentialSidecar({
    issuer: await makeIssuer(),
    async prepareKeys(file) {
      signer = await createKey(file, ['--name', 'partner-acme', '--scopes', 'orders:write,payments:write', '--hmac']);
      plain = await createKey(file, ['--name', 'plain', '--scopes', 'orders:write']);
    },
  });
  authority = `127.0.0.1:${t.port}`;
});
after(() => t?.close());

const BODY = Buffer.from('{"amount":100,"currency":"EUR"}');

/** curl arguments sending `body` with the given signature headers (from a file, as curl --data-binary @file does). */
function send(headers: Record<string, string>, body: Buffer = BODY): string[] {
  const file = join(t.scenario.tmp, `body-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, body);
  return [...headerArgs(headers), '-H', 'content-type: application/json', '--data-binary', `@${file}`];
}

async function refusedWith(path: string, args: string[], code: string): Promise<void> {
  const r = await curl(t, undefined, 'POST', path, args);
  assert.equal(r.status, 401, `${code}: ${r.body}`);
  assert.equal(r.json.code, code, r.body);
  assert.match((r.headers['www-authenticate'] ?? []).join(' '), /^Signature realm="meshward"/);
}

describe('HMAC-signed requests through the sidecar', () => {
  it('accepts a request signed in Python; the app gets the body and no signature', async () => {
    const h = await pythonSign({ method: 'POST', authority, path: '/signed/pay', body: BODY, keyid: signer.id, secretB64: signer.secret! });
    const r = await curl(t, undefined, 'POST', '/signed/pay', send(h));
    assert.equal(r.status, 200, r.body);
    const app = seen(r);
    assert.equal(app.body, BODY.toString());
    assert.equal(app.headers['x-mesh-principal'], `apikey:${signer.id}`);
    assert.equal(app.headers['x-mesh-scopes'], 'orders:write payments:write');
    assert.equal(app.headers.signature, undefined);
    assert.equal(app.headers['signature-input'], undefined);
    assert.equal(app.headers['content-digest'], h['content-digest'], 'Content-Digest describes the body and stays');
  });

  it('accepts a signed query and a signed GET without a body', async () => {
    const h = await pythonSign({ method: 'GET', authority, path: '/signed/list', query: 'page=2&sort=asc', keyid: signer.id, secretB64: signer.secret! });
    const r = await curl(t, undefined, 'GET', '/signed/list?page=2&sort=asc', headerArgs(h));
    assert.equal(r.status, 200, r.body);
  });

  it('refuses every bad signature with its reason', async () => {
    const sign = (over: Partial<Parameters<typeof pythonSign>[0]> = {}) =>
      pythonSign({ method: 'POST', authority, path: '/signed/pay', body: BODY, keyid: signer.id, secretB64: signer.secret!, ...over });
    const once = await sign();
    assert.equal((await curl(t, undefined, 'POST', '/signed/pay', send(once))).status, 200);
    await refusedWith('/signed/pay', send(once), 'replay');

    const changed = Buffer.from('{"amount":100000,"currency":"EUR"}');
    await refusedWith('/signed/pay', send(await sign(), changed), 'digest_mismatch');
    const attacker = await sign();
    attacker['content-digest'] = `sha-256=:${(await import('node:crypto')).createHash('sha256').update(changed).digest('base64')}:`;
    await refusedWith('/signed/pay', send(attacker, changed), 'bad_secret');
    await refusedWith('/signed/pay', send(await sign({ created: Math.floor(Date.now() / 1000) - 1000 })), 'clock_skew');
    await refusedWith('/signed/pay', send(await sign({ components: ['@method', '@authority', '@path'] })), 'not_covered');
    await refusedWith('/signed/pay', send(await sign({ keyid: 'AAAAAAAAAAAA' })), 'unknown_key');
    await refusedWith('/signed/pay', send(await sign({ secretB64: randomBytes(32).toString('base64') })), 'bad_secret');
    await refusedWith('/signed/pay', send(await sign({ keyid: plain.id, secretB64: randomBytes(32).toString('base64') })), 'unknown_key');
    await refusedWith('/signed/pay', send(await sign({ path: '/signed/other' })), 'bad_secret');
    await refusedWith('/signed/pay', send({}), 'missing');
  });

  it('refuses a body over credentials.hmac.maxBody with 413 before checking', async () => {
    const big = randomBytes(70 * 1024);
    const h = await pythonSign({ method: 'POST', authority, path: '/signed/pay', body: big, keyid: signer.id, secretB64: signer.secret! });
    const r = await curl(t, undefined, 'POST', '/signed/pay', send(h, big));
    assert.equal(r.status, 413, r.body);
    assert.equal(r.json.error, 'payload_too_large');
  });

  it('layers mTLS, API key and HMAC on /payments: all three must hold the scope', async () => {
    const h = await pythonSign({ method: 'POST', authority, path: '/payments/charge', body: BODY, keyid: signer.id, secretB64: signer.secret! });
    const ok = await curl(t, t.frontend, 'POST', '/payments/charge', [...send(h), '-H', `authorization: Bearer ${signer.key}`]);
    assert.equal(ok.status, 200, ok.body);
    const app = seen(ok);
    assert.equal(app.headers['x-mesh-principal'], `spiffe://example.org/ns/shop/sa/frontend apikey:${signer.id}`);
    assert.equal(app.headers['x-mesh-scopes'], 'orders:write payments:write', 'the scopes every proof holds');
    assert.equal(app.headers.authorization, undefined);

    const h2 = await pythonSign({ method: 'POST', authority, path: '/payments/charge', body: BODY, keyid: signer.id, secretB64: signer.secret! });
    const noCert = await curl(t, undefined, 'POST', '/payments/charge', [...send(h2), '-H', `authorization: Bearer ${signer.key}`]);
    assert.equal(noCert.status, 401, noCert.body);
    assert.match((noCert.headers['www-authenticate'] ?? []).join(' '), /MutualTLS/);

    const h3 = await pythonSign({ method: 'POST', authority, path: '/payments/charge', body: BODY, keyid: signer.id, secretB64: signer.secret! });
    const stranger = await curl(t, t.stranger, 'POST', '/payments/charge', [...send(h3), '-H', `authorization: Bearer ${signer.key}`]);
    assert.equal(stranger.status, 403, stranger.body);
    assert.equal(stranger.json.reason, 'the client certificate (spiffe://example.org/ns/other/sa/stranger) lacks scope payments:write');
  });
});
