// gRPC calls on a route with `require`: the sidecar answers a missing or invalid API key with a
// trailers-only grpc-status 16 (UNAUTHENTICATED) and a key without the scope with 7 (PERMISSION_DENIED),
// reason in grpc-message; a good key reaches the app. curl --http2 speaks HTTP/2 over TLS as gRPC does.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createKey, curl, makeIssuer, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

let t: CredentialSidecar;
let reader: CreatedKey;
let writer: CreatedKey;

before(async () => {
  t = await startCredentialSidecar({
    issuer: await makeIssuer(),
    async prepareKeys(file) {
      reader = await createKey(file, ['--name', 'reader', '--scopes', 'orders:read']);
      writer = await createKey(file, ['--name', 'writer', '--scopes', 'orders:write']);
    },
  });
});
after(() => t?.close());

const grpcCall = (extra: string[]) =>
  curl(t, undefined, 'POST', '/shop.v1.Orders/GetOrder', ['--http2', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', '', ...extra]);

it('answers gRPC calls with 16 for a missing or bad key, 7 for a key without the scope', async () => {
  const missing = await grpcCall([]);
  assert.equal(missing.status, 200);
  assert.deepEqual(missing.headers['grpc-status'], ['16']);
  assert.match(missing.headers['grpc-message']![0]!, /no API key/);

  const bad = await grpcCall(['-H', `x-api-key: ${reader.key.slice(0, -1)}${reader.key.endsWith('A') ? 'B' : 'A'}`]);
  assert.deepEqual(bad.headers['grpc-status'], ['16']);

  const lacking = await grpcCall(['-H', `x-api-key: ${writer.key}`]);
  assert.deepEqual(lacking.headers['grpc-status'], ['7']);
  assert.match(decodeURIComponent(lacking.headers['grpc-message']![0]!), new RegExp(`API key ${writer.id} lacks scope orders:read`));

  const ok = await grpcCall(['-H', `x-api-key: ${reader.key}`]);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['grpc-status'], undefined, 'the app answered, not the sidecar');
  assert.equal((ok.json.headers as Record<string, string>)['x-mesh-principal'], `apikey:${reader.id}`);
});
