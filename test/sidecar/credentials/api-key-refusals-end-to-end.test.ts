// Every API key refusal, end to end: keys made with `meshward apikey` (create, revoke, rotate), a real
// sidecar with clientCertificate: optional, curl as the client. Each row checks the status, the
// WWW-Authenticate challenge, the refusal code in the JSON body; accepted rows check what the app got:
// x-mesh-principal, the key's scopes, and no key in any header.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formatApiKey, generateApiKey } from '../../../src/auth/api-key.js';
import { runCli } from '../../support/cli.js';
import { metricValue } from '../../support/sidecar.js';
import { createKey, curl, makeIssuer, seen, startCredentialSidecar, type CreatedKey, type CredentialSidecar, type CurlResult } from './harness.js';
import { sleep } from '../../support/poll.js';

let t: CredentialSidecar;
const k: Record<string, CreatedKey> = {};
let rotatedOld = '';
let graceOld = '';

before(async () => {
  t = await startCredentialSidecar({
    issuer: await makeIssuer(),
    async prepareKeys(file) {
      k.reader = await createKey(file, ['--name', 'reader', '--scopes', 'orders:read,reports:read']);
      k.writer = await createKey(file, ['--name', 'writer', '--scopes', 'orders:write']);
      k.revoked = await createKey(file, ['--name', 'revoked', '--scopes', 'orders:read']);
      k.expired = await createKey(file, ['--name', 'expired', '--scopes', 'orders:read', '--ttl', '1s']);
      k.rotated = await createKey(file, ['--name', 'rotated', '--scopes', 'orders:read']);
      k.grace = await createKey(file, ['--name', 'grace', '--scopes', 'orders:read']);
      k.bound = await createKey(file, ['--name', 'bound', '--scopes', 'orders:read', '--bound-to', 'spiffe://example.org/ns/shop/**']);
      assert.equal((await runCli(['apikey', 'revoke', '--file', file, '--id', k.revoked!.id])).code, 0);
      rotatedOld = k.rotated!.key;
      const r1 = await runCli(['apikey', 'rotate', '--file', file, '--id', k.rotated!.id, '--grace', '1s', '--json']);
      assert.equal(r1.code, 0, r1.stderr);
      graceOld = k.grace!.key;
      const r2 = await runCli(['apikey', 'rotate', '--file', file, '--id', k.grace!.id, '--grace', '1h', '--json']);
      assert.equal(r2.code, 0, r2.stderr);
      k.graceNew = JSON.parse(r2.stdout) as CreatedKey;
      await sleep(1500); // the 1s ttl and the 1s grace are over
    },
  });
});
after(() => t?.close());

const apiKeyHeader = (key: string) => ['-H', `x-api-key: ${key}`];

function expectRefusal(r: CurlResult, status: number, code: string | undefined, challenge: RegExp): void {
  assert.equal(r.status, status, r.body);
  if (code !== undefined) assert.equal(r.json.code, code, r.body);
  const challenges = (r.headers['www-authenticate'] ?? []).join(' | ');
  assert.match(challenges, challenge);
  assert.ok(!/mwk_[0-9A-Za-z]{12}_/.test(r.body), 'a refusal never repeats the key');
}

describe('API keys through the sidecar', () => {
  it('accepts a key as x-api-key, Bearer and Basic username with an empty password; the app gets no key', async () => {
    // Header names in any case: the sidecar reads them from the raw header lines.
    for (const args of [apiKeyHeader(k.reader!.key), ['-H', `authorization: Bearer ${k.reader!.key}`], ['-u', `${k.reader!.key}:`], ['-H', `X-API-Key: ${k.reader!.key}`], ['-H', `AUTHORIZATION: Bearer ${k.reader!.key}`]]) {
      const r = await curl(t, undefined, 'GET', '/keyed/1', args);
      assert.equal(r.status, 200, r.body);
      const app = seen(r);
      assert.equal(app.headers['x-mesh-principal'], `apikey:${k.reader!.id}`);
      assert.equal(app.headers['x-mesh-scopes'], 'orders:read reports:read');
      assert.equal(app.headers['x-api-key'], undefined);
      assert.equal(app.headers.authorization, undefined);
      assert.equal(app.headers['x-mesh-client-id'], undefined, 'no certificate, no client id');
      assert.ok(!JSON.stringify(app.headers).includes('mwk_'));
    }
  });

  it('refuses every bad key with 401 and the reason', async () => {
    const unknown = generateApiKey().key;
    const typo = k.reader!.key.slice(0, -1) + (k.reader!.key.endsWith('A') ? 'B' : 'A');
    const wrongSecret = formatApiKey(k.reader!.id, generateApiKey().secret);
    const rows: [string, string[], string, number, string | undefined, RegExp][] = [
      ['no key', [], '/keyed/1', 401, 'missing', /^ApiKey realm="meshward"$/],
      ['key in the query string', [], `/keyed/1?api_key=${k.reader!.key}`, 401, 'in_query', /error="invalid_request"/],
      ['Basic with a password', ['-u', `${k.reader!.key}:hunter2`], '/keyed/1', 401, 'basic_password', /error="invalid_request"/],
      ['Basic with a user name that is no key', ['-u', 'admin:'], '/keyed/1', 401, 'basic_password', /error="invalid_request"/],
      ['two keys', [...apiKeyHeader(k.reader!.key), '-H', `authorization: Bearer ${k.writer!.key}`], '/keyed/1', 401, 'ambiguous', /error="invalid_request"/],
      ['a typo (checksum)', apiKeyHeader(typo), '/keyed/1', 401, 'checksum', /error="invalid_key".*checksum/],
      ['not a key at all', apiKeyHeader('mwk_short'), '/keyed/1', 401, 'malformed', /error="invalid_key"/],
      ['unknown id', apiKeyHeader(unknown), '/keyed/1', 401, 'unknown_key', /error="invalid_key"/],
      ['wrong secret', apiKeyHeader(wrongSecret), '/keyed/1', 401, 'bad_secret', /error="invalid_key"/],
      ['revoked', apiKeyHeader(k.revoked!.key), '/keyed/1', 401, 'revoked', /is revoked/],
      ['expired', apiKeyHeader(k.expired!.key), '/keyed/1', 401, 'expired', /expired/],
      ['old key after the rotation grace', apiKeyHeader(rotatedOld), '/keyed/1', 401, 'rotated', /rotated/],
      ['bound key without a certificate', apiKeyHeader(k.bound!.key), '/keyed/1', 401, 'binding', /error="invalid_key"/],
      ['a default [mtls] route without a certificate', apiKeyHeader(k.reader!.key), '/orders/1', 401, 'missing', /^MutualTLS realm="meshward"$/],
      ['anyOf [[jwt], [apikey]] with neither', [], '/reports/q', 401, 'missing', /Bearer realm="meshward".*ApiKey realm="meshward"|ApiKey realm="meshward".*Bearer realm="meshward"/],
    ];
    for (const [what, args, path, status, code, challenge] of rows) {
      await it_row(what, async () => expectRefusal(await curl(t, undefined, 'GET', path, args), status, code, challenge));
    }
  });

  it('refuses a bound key over a certificate that does not match, accepts it over one that does', async () => {
    const wrong = await curl(t, t.stranger, 'GET', '/keyed/1', apiKeyHeader(k.bound!.key));
    expectRefusal(wrong, 401, 'binding', /spiffe:\/\/example.org\/ns\/other\/sa\/stranger/);
    const right = await curl(t, t.frontend, 'GET', '/keyed/1', apiKeyHeader(k.bound!.key));
    assert.equal(right.status, 200, right.body);
    assert.equal(seen(right).headers['x-mesh-principal'], `apikey:${k.bound!.id}`);
  });

  it('accepts both keys during a rotation grace', async () => {
    for (const key of [graceOld, k.graceNew!.key]) assert.equal((await curl(t, undefined, 'GET', '/keyed/1', apiKeyHeader(key))).status, 200);
  });

  it('answers 403 naming the key that lacks the route scope', async () => {
    const r = await curl(t, undefined, 'GET', '/keyed/1', apiKeyHeader(k.writer!.key));
    assert.equal(r.status, 403, r.body);
    assert.equal(r.json.error, 'forbidden');
    assert.equal(r.json.credential, 'apikey');
    assert.equal(r.json.reason, `API key ${k.writer!.id} lacks scope orders:read`);
  });

  it('passes anyOf with the API key alternative', async () => {
    const r = await curl(t, undefined, 'GET', '/reports/q', apiKeyHeader(k.reader!.key));
    assert.equal(r.status, 200, r.body);
    assert.equal(seen(r).headers['x-mesh-principal'], `apikey:${k.reader!.id}`);
  });

  it('names the key id in audit lines and counts refusals by reason', async () => {
    const line = t.sidecar.logs.find((l) => l.event === 'request_denied' && l.refusal === 'revoked');
    assert.ok(line, 'an audit line for the revoked key');
    assert.equal(line.keyId, k.revoked!.id);
    assert.ok(!JSON.stringify(t.sidecar.logs).includes(k.reader!.key), 'no log line holds a key');
    const metrics = await t.sidecar.metrics();
    assert.equal(metricValue(metrics, 'meshward_credential_checks_total', { kind: 'apikey', result: 'refused', reason: 'revoked' }), 1);
    assert.ok(metricValue(metrics, 'meshward_credential_checks_total', { kind: 'apikey', result: 'accepted', reason: 'ok' }) >= 3);
  });
});

/** One table row: a failing row names itself. */
async function it_row(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}
