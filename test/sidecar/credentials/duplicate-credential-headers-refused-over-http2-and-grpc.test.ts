// A request carrying a credential header twice (two authorization lines, whatever their schemes, or two
// x-api-key lines) is refused as ambiguous over HTTP/2 and gRPC exactly as over HTTP/1.1, and never reaches
// the app. Node's HTTP/2 headers object keeps only the first authorization line and joins x-api-key lines
// with ", ", so the sidecar must read the raw header lines. curl sends each -H as its own field line over
// HTTP/2 too (checked against node's rawHeaders). Single credentials still pass on every protocol.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKey, curl, makeIssuer, seen, startCredentialSidecar, type CreatedKey, type CredentialSidecar, type CurlResult, type Issuer } from './harness.js';

let t: CredentialSidecar;
let issuer: Issuer;
let reader: CreatedKey;
let other: CreatedKey;
let jwt = '';

before(async () => {
  issuer = await makeIssuer();
  t = await startCredentialSidecar({
    issuer,
    async prepareKeys(file) {
      reader = await createKey(file, ['--name', 'reader', '--scopes', 'orders:read']);
      other = await createKey(file, ['--name', 'other', '--scopes', 'orders:read']);
    },
  });
  jwt = await issuer.sign({});
});
after(() => t?.close());

const PROTOCOLS = [['HTTP/1.1', '--http1.1'], ['HTTP/2', '--http2']] as const;
const h = (line: string) => ['-H', line];

/** What the app must never see: a key or a token in any header. */
function assertNoCredentialForwarded(r: CurlResult): void {
  const forwarded = JSON.stringify(seen(r).headers);
  assert.ok(!forwarded.includes('mwk_') && !forwarded.includes(jwt), forwarded);
}

describe('duplicated credential headers', () => {
  it('are refused as ambiguous over HTTP/1.1 and HTTP/2, and never forwarded', async () => {
    const rows: [string, string, string[], RegExp][] = [
      ['Bearer API key twice (the same key)', '/keyed/1', [...h(`authorization: Bearer ${reader.key}`), ...h(`authorization: Bearer ${reader.key}`)], /ApiKey realm/],
      ['Bearer API key, then another Bearer key', '/keyed/1', [...h(`authorization: Bearer ${reader.key}`), ...h(`authorization: Bearer ${other.key}`)], /ApiKey realm/],
      ['Bearer API key and a Signature authorization', '/keyed/1', [...h(`authorization: Bearer ${reader.key}`), ...h('authorization: Signature keyId="k1",signature="AAAA"')], /ApiKey realm/],
      ['x-api-key twice (the same key)', '/keyed/1', [...h(`x-api-key: ${reader.key}`), ...h(`x-api-key: ${reader.key}`)], /ApiKey realm/],
      ['x-api-key twice, names in other cases', '/keyed/1', [...h(`X-Api-Key: ${reader.key}`), ...h(`x-API-key: ${other.key}`)], /ApiKey realm/],
      ['Bearer JWT twice', '/token/1', [...h(`authorization: Bearer ${jwt}`), ...h(`authorization: Bearer ${jwt}`)], /Bearer realm/],
      ['Bearer JWT and a Signature authorization', '/token/1', [...h(`authorization: Bearer ${jwt}`), ...h('authorization: Signature keyId="k1",signature="AAAA"')], /Bearer realm/],
      ['a Signature authorization, then a Bearer JWT', '/token/1', [...h('authorization: Signature keyId="k1",signature="AAAA"'), ...h(`authorization: Bearer ${jwt}`)], /Bearer realm/],
    ];
    for (const [proto, flag] of PROTOCOLS) {
      for (const [what, path, args, challenge] of rows) {
        const before = t.app.seen.length;
        const r = await curl(t, undefined, 'GET', path, [flag, ...args]);
        const label = `${proto}: ${what}`;
        assert.equal(r.status, 401, `${label}: ${r.body}`);
        assert.equal(r.json.code, 'ambiguous', `${label}: ${r.body}`);
        assert.match((r.headers['www-authenticate'] ?? []).join(' | '), challenge, label);
        assert.match((r.headers['www-authenticate'] ?? []).join(' | '), /error="invalid_request"/, label);
        assert.equal(t.app.seen.length, before, `${label}: the app got the request`);
      }
    }
  });

  it('are refused on gRPC routes with grpc-status 16, and never forwarded', async () => {
    const rows: [string, string[]][] = [
      ['x-api-key twice', [...h(`x-api-key: ${reader.key}`), ...h(`x-api-key: ${other.key}`)]],
      ['x-api-key twice (the same key)', [...h(`x-api-key: ${reader.key}`), ...h(`x-api-key: ${reader.key}`)]],
      ['Bearer API key twice', [...h(`authorization: Bearer ${reader.key}`), ...h(`authorization: Bearer ${other.key}`)]],
      ['Bearer API key and a Signature authorization', [...h(`authorization: Bearer ${reader.key}`), ...h('authorization: Signature keyId="k1",signature="AAAA"')]],
    ];
    for (const [what, args] of rows) {
      const before = t.app.seen.length;
      const r = await grpcCall(args);
      assert.equal(r.status, 200, `${what}: ${r.body}`);
      assert.deepEqual(r.headers['grpc-status'], ['16'], what);
      assert.match(decodeURIComponent(r.headers['grpc-message']![0]!), /several/, what);
      assert.equal(t.app.seen.length, before, `${what}: the app got the call`);
    }
  });

  it('one credential still passes over HTTP/1.1, HTTP/2 and gRPC, and is not forwarded', async () => {
    for (const [proto, flag] of PROTOCOLS) {
      for (const [path, args, principal] of [
        ['/keyed/1', h(`x-api-key: ${reader.key}`), `apikey:${reader.id}`],
        ['/keyed/1', h(`authorization: Bearer ${reader.key}`), `apikey:${reader.id}`],
        ['/token/1', h(`authorization: Bearer ${jwt}`), /^jwt:/],
      ] as const) {
        const r = await curl(t, undefined, 'GET', path, [flag, ...args]);
        assert.equal(r.status, 200, `${proto} ${path}: ${r.body}`);
        assert.match(seen(r).headers['x-mesh-principal']!, typeof principal === 'string' ? new RegExp(`^${principal}$`) : principal);
        assertNoCredentialForwarded(r);
      }
    }
    for (const args of [h(`x-api-key: ${reader.key}`), h(`authorization: Bearer ${reader.key}`)]) {
      const r = await grpcCall(args);
      assert.equal(r.headers['grpc-status'], undefined, `the app answered: ${r.body}`);
      assert.equal(seen(r).headers['x-mesh-principal'], `apikey:${reader.id}`);
      assertNoCredentialForwarded(r);
    }
  });
});

function grpcCall(extra: string[]): Promise<CurlResult> {
  return curl(t, undefined, 'POST', '/shop.v1.Orders/GetOrder', ['--http2', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', '', ...extra]);
}
