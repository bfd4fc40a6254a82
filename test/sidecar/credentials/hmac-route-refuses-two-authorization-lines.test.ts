// On a route that requires only an HMAC signature, the Authorization header is not a credential the sidecar
// reads: one line goes on to the app. Two lines are refused as ambiguous (401, code ambiguous, the Signature
// challenge), over HTTP/1.1 and HTTP/2 alike, even with a valid signature: Authorization holds one
// credential, and node's HTTP/2 header object would fold the two into the first on the way to the app
// (docs/api-credentials.md). curl sends each -H as its own field line over both protocols.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createKey, curl, headerArgs, makeIssuer, pythonSign, seen, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

let t: CredentialSidecar;
let signer: CreatedKey;

before(async () => {
  t = await startCredentialSidecar({
    issuer: await makeIssuer(),
    async prepareKeys(file) {
      signer = await createKey(file, ['--name', 'partner', '--scopes', 'orders:write', '--hmac']);
    },
  });
});
after(() => t?.close());

const BODY = Buffer.from('{"amount":100}');
const PROTOCOLS = [['HTTP/1.1', '--http1.1'], ['HTTP/2', '--http2']] as const;

/** curl arguments for a freshly signed POST /signed/pay (python signer) plus `extra` header lines. */
async function signed(extra: string[]): Promise<string[]> {
  const h = await pythonSign({ method: 'POST', authority: `127.0.0.1:${t.port}`, path: '/signed/pay', body: BODY, keyid: signer.id, secretB64: signer.secret! });
  const file = join(t.scenario.tmp, `body-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, BODY);
  return [...headerArgs(h), ...extra.flatMap((line) => ['-H', line]), '-H', 'content-type: application/json', '--data-binary', `@${file}`];
}

it('two authorization lines on an HMAC-only route are refused as ambiguous over HTTP/1.1 and HTTP/2', async () => {
  const rows: [string, string[]][] = [
    ['two app tokens', ['authorization: Bearer app-token-1', 'authorization: Bearer app-token-2']],
    ['the same line twice', ['authorization: Basic dXNlcjpwdw==', 'authorization: Basic dXNlcjpwdw==']],
    ['names in other cases', ['Authorization: Bearer app-token-1', 'AUTHORIZATION: Bearer app-token-2']],
  ];
  for (const [proto, flag] of PROTOCOLS) {
    for (const [what, lines] of rows) {
      const label = `${proto}: ${what}`;
      const before = t.app.seen.length;
      const r = await curl(t, undefined, 'POST', '/signed/pay', [flag, ...(await signed(lines))]);
      assert.equal(r.status, 401, `${label}: ${r.body}`);
      assert.equal(r.json.code, 'ambiguous', `${label}: ${r.body}`);
      assert.equal(r.json.credential, 'hmac', label);
      assert.match((r.headers['www-authenticate'] ?? []).join(' | '), /^Signature realm="meshward", error="invalid_signature"/, label);
      assert.equal(t.app.seen.length, before, `${label}: the app got the request`);
    }
  }
});

it('one authorization line on an HMAC-only route reaches the app unchanged; none is fine too', async () => {
  for (const [proto, flag] of PROTOCOLS) {
    const withOne = await curl(t, undefined, 'POST', '/signed/pay', [flag, ...(await signed(['authorization: Bearer app-token-1']))]);
    assert.equal(withOne.status, 200, `${proto}: ${withOne.body}`);
    assert.equal(seen(withOne).headers['authorization'], 'Bearer app-token-1', proto);
    assert.equal(seen(withOne).headers['x-mesh-principal'], `apikey:${signer.id}`, proto);
    const without = await curl(t, undefined, 'POST', '/signed/pay', [flag, ...(await signed([]))]);
    assert.equal(without.status, 200, `${proto}: ${without.body}`);
    assert.equal(seen(without).headers['authorization'], undefined, proto);
  }
});
