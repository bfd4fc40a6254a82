// The HMAC verifier agrees with a signer written from RFC 9421 and RFC 9530 independently of src/auth:
// test/auth/fixtures/hmac_sign.py, Python's standard hmac, hashlib and base64 only. Requests of every shape a
// client sends (no query, a query, a JSON body, a binary body, extra headers, @target-uri, expires and nonce,
// an authority in upper case with its default port) are accepted; the same signed requests altered in transit
// are refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyHttpSignature } from '../../src/auth/http-signature.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { REPO_ROOT } from '../support/cli.js';
import { expectRefused, keySet, makeKey, NOW, NOW_S } from './helpers.js';

const SIGNER = join(REPO_ROOT, 'test', 'auth', 'fixtures', 'hmac_sign.py');
const { key, record } = makeKey();
const KEYS = keySet(record);

interface PyRequest {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  query: string | null;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  components?: string[];
  expires?: number;
  nonce?: string;
  label?: string;
}

/** Signs every request with the Python signer in one process; returns each request as the sidecar sees it. */
function pythonSigned(requests: PyRequest[]): AuthRequest[] {
  const input = requests.map((r) => JSON.stringify({
    ...r, body: undefined, body_b64: r.body === null ? null : r.body.toString('base64'),
    keyid: key.id, secret_b64: key.hmacSecret.toString('base64'), created: NOW_S,
  })).join('\n');
  const run = spawnSync('python3', [SIGNER], { input, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, requests.length);
  return requests.map((r, i) => {
    const headers = { ...r.headers, ...(JSON.parse(lines[i]!) as Record<string, string>) };
    const req: AuthRequest = { method: r.method, scheme: r.scheme, authority: r.authority, path: r.path, headers };
    if (r.query !== null) req.query = r.query;
    if (r.body !== null) req.body = { sha256: createHash('sha256').update(r.body).digest() };
    return req;
  });
}

const base: PyRequest = { method: 'GET', scheme: 'https', authority: 'orders.example.com', path: '/orders', query: null, headers: {}, body: null };
const REQUESTS: [string, PyRequest][] = [
  ['GET without a query', base],
  ['GET with a query', { ...base, query: 'status=open&page=2' }],
  ['GET with an empty query ("?")', { ...base, query: '' }],
  ['POST with a JSON body', { ...base, method: 'POST', body: Buffer.from('{"item":"book","qty":2}'), headers: { 'content-type': 'application/json' } }],
  ['PUT with a binary body', { ...base, method: 'PUT', path: '/blobs/7', body: randomBytes(1024) }],
  ['POST covering content-type and date too', {
    ...base, method: 'POST', body: Buffer.from('a=1'), headers: { 'content-type': 'application/x-www-form-urlencoded', date: 'Sun, 01 Jun 2025 12:00:00 GMT' },
    components: ['@method', '@authority', '@path', 'content-type', 'date', 'content-digest'],
  }],
  ['@target-uri instead of @authority/@path/@query', { ...base, query: 'q=1', components: ['@method', '@target-uri'] }],
  ['@request-target with @authority', { ...base, query: 'q=1', components: ['@method', '@authority', '@request-target'] }],
  ['expires and nonce', { ...base, expires: NOW_S + 60, nonce: 'n-4f1c' }],
  ['an authority in upper case with the default port', { ...base, authority: 'Orders.Example.COM:443' }],
  ['a header sent as two field lines', { ...base, headers: { 'x-tags': ['a', ' b '] }, components: ['@method', '@authority', '@path', 'x-tags'] }],
  ['a label other than sig1', { ...base, label: 'partner' }],
];

describe('HMAC verifier against the independent Python signer', () => {
  const signed = pythonSigned(REQUESTS.map(([, r]) => r));

  REQUESTS.forEach(([name], i) => {
    it(`accepts: ${name}`, () => {
      const v = verifyHttpSignature(signed[i]!, KEYS, NOW, { maxSkewMs: 300_000 });
      assert.ok(v.ok, v.ok ? '' : `${v.reason}: ${v.message}`);
      assert.equal(v.principal, `apikey:${key.id}`);
    });
  });

  it('refuses the Python-signed requests once altered: body, path, method, query, a covered header', () => {
    const post = signed[3]!;
    const verify = (req: AuthRequest) => verifyHttpSignature(req, KEYS, NOW, { maxSkewMs: 300_000 });
    expectRefused(verify({ ...post, body: { sha256: createHash('sha256').update('{"item":"car","qty":2}').digest() } }), 'digest_mismatch');
    expectRefused(verify({ ...post, path: '/orders/admin' }), 'bad_secret');
    expectRefused(verify({ ...post, method: 'PATCH' }), 'bad_secret');
    expectRefused(verify({ ...signed[1]!, query: 'status=closed&page=2' }), 'bad_secret');
    const withDate = signed[5]!;
    expectRefused(verify({ ...withDate, headers: { ...withDate.headers, 'content-type': 'text/plain' } }), 'bad_secret');
  });
});
