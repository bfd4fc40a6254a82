// The worked HMAC example of docs/api-credentials.md is real: its sign.py, taken from the page as it is,
// produces headers that the verifier accepts for a POST with a query and a body and for a plain GET, and the
// page's example key has the documented shape with a checksum that scanners do not report.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findApiKeys, parseApiKey } from '../../src/auth/api-key.js';
import { verifyHttpSignature } from '../../src/auth/http-signature.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { REPO_ROOT } from '../support/cli.js';
import { DAY, keySet, makeKey } from './helpers.js';
import { tempDir } from '../support/temp-dir.js';

const PAGE = readFileSync(join(REPO_ROOT, 'docs', 'api-credentials.md'), 'utf8');
const { dir, cleanup } = tempDir('meshward-docs-');
after(cleanup);

function signPy(): string {
  const m = /<!-- sign\.py: begin[^>]*-->\n```python\n([\s\S]*?)```\n<!-- sign\.py: end -->/.exec(PAGE);
  assert.ok(m, 'the sign.py block is on the page');
  const path = join(dir, 'sign.py');
  writeFileSync(path, m[1]!);
  return path;
}

describe('docs/api-credentials.md HMAC example', () => {
  // sign.py signs with the real clock, so the key must be valid now.
  const { key, record } = makeKey({ expires: new Date(Date.now() + DAY) });
  const keys = keySet(record);
  const script = signPy();

  function run(method: string, url: string, body: string | null): Record<string, string> {
    const bodyFile = body === null ? '-' : join(dir, 'body.json');
    if (body !== null) writeFileSync(bodyFile, body);
    const r = spawnSync('python3', [script, method, url, bodyFile, key.id, key.hmacSecret.toString('base64')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split('\n').map((line) => {
      const colon = line.indexOf(': ');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 2)];
    }));
  }

  it('a POST with a query and a JSON body, sent to port 8443', () => {
    const body = '{"amount":100,"currency":"EUR"}\n';
    const headers = run('POST', 'https://orders.example.com:8443/payments?idempotency=42', body);
    assert.deepEqual(Object.keys(headers), ['content-digest', 'signature-input', 'signature']);
    const req: AuthRequest = {
      method: 'POST', scheme: 'https', authority: 'orders.example.com:8443', path: '/payments', query: 'idempotency=42',
      headers, body: { sha256: createHash('sha256').update(body).digest() },
    };
    const v = verifyHttpSignature(req, keys, Date.now(), { maxSkewMs: 300_000 });
    assert.ok(v.ok, v.ok ? '' : v.message);
  });

  it('a GET without a query or body, on the default port', () => {
    const headers = run('GET', 'https://Orders.Example.com:443/orders', null);
    const req: AuthRequest = { method: 'GET', scheme: 'https', authority: 'orders.example.com', path: '/orders', headers };
    const v = verifyHttpSignature(req, keys, Date.now(), { maxSkewMs: 300_000 });
    assert.ok(v.ok, v.ok ? '' : v.message);
  });

  it('the example key has the documented shape and a checksum one character off', () => {
    const example = /^(mwk_\S+)$/m.exec(PAGE)![1]!;
    const parsed = parseApiKey(example);
    assert.ok(!parsed.ok && parsed.reason === 'checksum');
    assert.ok(parseApiKey(`${example.slice(0, -1)}t`).ok);
    assert.deepEqual(findApiKeys(PAGE), []);
  });
});
