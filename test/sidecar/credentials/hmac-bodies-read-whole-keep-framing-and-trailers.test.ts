// An HMAC route reads the body whole before the check (src/sidecar/http/body.ts): a body with a
// Content-Length up to PREALLOCATED_BODY_BYTES into one buffer of that length, anything else (chunked, or
// longer, up to credentials.hmac.maxBody) chunk by chunk. Both reach the app byte for byte, with their
// framing; a chunked body's trailers (and an HTTP/2 client's) go on to the app filtered as on every other
// path (forwardableTrailers). A body shorter or longer than its Content-Length, or one the client breaks
// off, never reaches the app, and the sidecar keeps serving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { contentDigest, signRequest } from '../../../src/auth/http-signature.js';
import { PREALLOCATED_BODY_BYTES } from '../../../src/sidecar/http/body.js';
import { createKey, makeIssuer, ISSUER, AUDIENCE, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

interface Received {
  method: string;
  headers: IncomingHttpHeaders | http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: Record<string, string>;
}

/** Fields a client must not smuggle in after the body, and one an app may get. */
const SMUGGLED = { 'x-mesh-client-id': 'spiffe://example.org/ns/admin/sa/root', 'x-forwarded-client-cert': 'By=x', authorization: 'Bearer stolen', 'x-checksum': 'sha256=abc' };
const KEPT = { 'x-checksum': 'sha256=abc' };

function recordTrailers(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) if (!raw[i]!.startsWith(':')) out[raw[i]!.toLowerCase()] = raw[i + 1]!;
  return out;
}

async function startHttpApp(received: Received[]): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method!, headers: req.headers, body: Buffer.concat(chunks), trailers: recordTrailers(req.rawTrailers) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

async function startH2cApp(received: Received[]): Promise<{ url: string; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    let trailers: Record<string, string> = {};
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (_t: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
      trailers = recordTrailers(raw ?? []);
    });
    stream.on('end', () => {
      received.push({ method: headers[':method']!, headers, body: Buffer.concat(chunks), trailers });
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** A sidecar whose maxBody is above PREALLOCATED_BODY_BYTES, so both ways of reading are reachable. */
const MAX_BODY = 4 * PREALLOCATED_BODY_BYTES;

async function sidecarFor(app: string, keys: { signer?: CreatedKey }): Promise<CredentialSidecar> {
  return startCredentialSidecar({
    issuer: await makeIssuer(),
    app,
    async prepareKeys(file) {
      keys.signer = await createKey(file, ['--name', 'partner', '--scopes', 'orders:write', '--hmac']);
    },
    config: {
      credentials: {
        apiKeys: './keys/apikeys.yaml',
        hmac: { maxSkew: '300s', maxBody: `${MAX_BODY / 1024}KiB` },
        jwt: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: './jwks/jwks.json', algorithms: ['ES256'] }],
      },
    },
  });
}

let nonce = 0;
/** Signature-Input, Signature and Content-Digest for a POST of `body` to `path`. */
function signed(t: CredentialSidecar, key: CreatedKey, path: string, body: Buffer): Record<string, string> {
  const digest = contentDigest(body);
  const sig = signRequest(
    { method: 'POST', scheme: 'https', authority: `127.0.0.1:${t.port}`, path, headers: { 'content-digest': digest }, body: { sha256: Buffer.alloc(32) } },
    { keyId: key.id, secret: Buffer.from(key.secret!, 'base64'), created: Math.floor(Date.now() / 1000), nonce: `n${nonce++}` },
  );
  return { 'content-digest': digest, ...sig };
}

function tlsOptions(t: CredentialSidecar): tls.ConnectionOptions {
  return { host: '127.0.0.1', port: t.port, ca: readFileSync(t.frontend.ca), cert: readFileSync(t.frontend.cert), key: readFileSync(t.frontend.key), servername: 'localhost', ALPNProtocols: ['http/1.1'] };
}

function head(t: CredentialSidecar, path: string, fields: Record<string, string>): string {
  let text = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${t.port}\r\n`;
  for (const [k, v] of Object.entries(fields)) text += `${k}: ${v}\r\n`;
  return `${text}\r\n`;
}

/**
 * Writes `parts` on one TLS connection (each after the previous one was written), then either ends the
 * connection (`end`), destroys it (`destroy`), or waits for the sidecar to close it; everything the sidecar
 * answered, bounded by 10 s.
 */
function rawExchange(t: CredentialSidecar, parts: (string | Buffer)[], then: 'end' | 'destroy' | 'wait' = 'wait'): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect(tlsOptions(t), () => {
      for (const p of parts) socket.write(p);
      if (then === 'end') socket.end();
      if (then === 'destroy') setImmediate(() => socket.destroy());
    });
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

const statuses = (raw: string): number[] => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

function chunkedBody(body: Buffer, pieces: number, trailerLines: string): Buffer {
  const out: Buffer[] = [];
  const size = Math.ceil(body.length / pieces);
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size);
    out.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`0\r\n${trailerLines}\r\n`));
  return Buffer.concat(out);
}

const trailerLines = (fields: Record<string, string>): string => Object.entries(fields).map(([k, v]) => `${k}: ${v}\r\n`).join('');

/** An HTTP/2 POST with `body` (in two DATA frames) and trailers; the status, or 0 when the stream failed. */
let lastBody = '';
function http2Post(t: CredentialSidecar, path: string, fields: Record<string, string>, body: Buffer, trailers: Record<string, string>): Promise<number> {
  lastBody = '';
  return new Promise((resolve) => {
    const session = http2.connect(`https://127.0.0.1:${t.port}`, { ...tlsOptions(t), ALPNProtocols: ['h2'] });
    session.on('error', () => {});
    // node's client would send servername:port as :authority ("localhost:…"); the signature covers 127.0.0.1:port.
    const stream = session.request({ ':method': 'POST', ':path': path, ':authority': `127.0.0.1:${t.port}`, ...fields }, { waitForTrailers: true });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.on('error', () => {});
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (lastBody += c));
    stream.on('close', () => {
      session.close();
      resolve(status);
    });
    stream.write(body.subarray(0, body.length >> 1));
    stream.end(body.subarray(body.length >> 1));
  });
}

/** The app (what it received), the signing key and the sidecar in front of the app, for one describe block. */
function useAppBehindSidecar(startApp: (received: Received[]) => Promise<{ url: string; close(): Promise<void> }>) {
  const rig = { received: [] as Received[], keys: {} as { signer?: CreatedKey }, t: undefined as unknown as CredentialSidecar };
  let app: { url: string; close(): Promise<void> } | undefined;
  before(async () => {
    app = await startApp(rig.received);
    rig.t = await sidecarFor(app.url, rig.keys);
  });
  after(async () => {
    await rig.t?.close();
    await app?.close();
  });
  return rig;
}

describe('HMAC bodies read whole, to an http:// app', () => {
  const rig = useAppBehindSidecar(startHttpApp);
  const { received, keys } = rig;

  const post = (path: string, body: Buffer, extra: Record<string, string> = {}): Promise<string> =>
    rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(body.length), connection: 'close', ...extra }), body]);

  it('forwards a Content-Length body within the preallocated bound byte for byte, with its length', async () => {
    const body = randomBytes(1024);
    const raw = await post('/signed/small', body);
    assert.deepEqual(statuses(raw), [200], raw);
    const got = received.at(-1)!;
    assert.equal(got.headers['content-length'], '1024');
    assert.equal(got.headers['transfer-encoding'], undefined);
    assert.deepEqual(got.body, body);
    assert.equal(got.headers.signature, undefined);
  });

  it('forwards a Content-Length body over the bound (read chunk by chunk) byte for byte', async () => {
    const body = randomBytes(PREALLOCATED_BODY_BYTES + 4096);
    const raw = await post('/signed/large', body);
    assert.deepEqual(statuses(raw), [200], raw);
    const got = received.at(-1)!;
    assert.equal(got.headers['content-length'], String(body.length));
    assert.deepEqual(got.body, body);
  });

  it('refuses a changed body on either way of reading (digest_mismatch), and one over maxBody with 413', async () => {
    for (const size of [1024, PREALLOCATED_BODY_BYTES + 1]) {
      const body = randomBytes(size);
      const h = signed(rig.t, keys.signer!, '/signed/changed', body);
      const changed = Buffer.from(body);
      changed[size >> 1]! ^= 1;
      const before = received.length;
      const raw = await rawExchange(rig.t, [head(rig.t, '/signed/changed', { ...h, 'content-length': String(size), connection: 'close' }), changed]);
      assert.deepEqual(statuses(raw), [401], raw);
      assert.match(raw, /"code":"digest_mismatch"/);
      assert.equal(received.length, before, 'the app never sees it');
    }
    const big = randomBytes(MAX_BODY + 1);
    assert.deepEqual(statuses(await post('/signed/big', big)), [413]);
  });

  it('forwards a chunked body with its trailers, filtered as on every other path', async () => {
    const body = randomBytes(3000);
    const path = '/signed/chunked';
    const h = signed(rig.t, keys.signer!, path, body);
    const raw = await rawExchange(rig.t, [head(rig.t, path, { ...h, 'transfer-encoding': 'chunked', trailer: 'x-checksum', connection: 'close' }), chunkedBody(body, 3, `${trailerLines(SMUGGLED)}X-Request-Cost: 7\r\n`)]);
    assert.deepEqual(statuses(raw), [200], raw);
    const got = received.at(-1)!;
    assert.deepEqual(got.body, body);
    assert.equal(got.headers['transfer-encoding'], 'chunked');
    assert.deepEqual(got.trailers, { ...KEPT, 'x-request-cost': '7' });
    assert.match(String(got.headers['x-mesh-principal']), /^apikey:/);
  });

  it('forwards a chunked body without trailers, and an empty chunked body', async () => {
    for (const body of [randomBytes(500), Buffer.alloc(0)]) {
      const path = '/signed/plain-chunked';
      const raw = await rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'transfer-encoding': 'chunked', connection: 'close' }), chunkedBody(body, 2, '')]);
      assert.deepEqual(statuses(raw), [200], raw);
      const got = received.at(-1)!;
      assert.deepEqual(got.body, body);
      assert.deepEqual(got.trailers, {});
    }
  });

  it('checks only the Content-Length bytes of a longer body: the bytes after them are the next request', async () => {
    const body = randomBytes(1024);
    const path = '/signed/longer';
    const before = received.length;
    const next = `POST /signed/next HTTP/1.1\r\nHost: 127.0.0.1:${rig.t.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    const raw = await rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(body.length) }), Buffer.concat([body, Buffer.from(next)])]);
    // The second request carries no signature: refused, and only the first reaches the app, with exactly its declared bytes.
    assert.deepEqual(statuses(raw), [200, 401], raw);
    assert.equal(received.length, before + 1);
    assert.deepEqual(received.at(-1)!.body, body);
  });

  it('never forwards a body shorter than its Content-Length (the client ends the connection) or one broken off', async () => {
    const path = '/signed/short';
    const before = received.length;
    for (const [size, sent] of [[1024, 1000], [PREALLOCATED_BODY_BYTES + 1024, PREALLOCATED_BODY_BYTES]] as const) {
      const body = randomBytes(size);
      const fields = { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(size) };
      const ended = await rawExchange(rig.t, [head(rig.t, path, fields), body.subarray(0, sent)], 'end');
      assert.deepEqual(statuses(ended).filter((s) => s === 200), [], ended);
      const broken = await rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(size) }), body.subarray(0, sent)], 'destroy');
      assert.deepEqual(statuses(broken).filter((s) => s === 200), [], broken);
    }
    // Still serving, and nothing of the broken requests reached the app.
    const body = randomBytes(100);
    assert.deepEqual(statuses(await post('/signed/after', body)), [200]);
    assert.equal(received.length, before + 1);
    assert.equal(received.at(-1)!.method, 'POST');
    assert.deepEqual(received.at(-1)!.body, body);
  });

  it('takes an HTTP/2 body without content-length as chunked, with the client\'s trailers', async () => {
    const body = randomBytes(2048);
    const path = '/signed/h2';
    assert.equal(await http2Post(rig.t, path, signed(rig.t, keys.signer!, path, body), body, SMUGGLED), 200, lastBody);
    const got = received.at(-1)!;
    assert.deepEqual(got.body, body);
    assert.equal(got.headers['transfer-encoding'], 'chunked');
    assert.deepEqual(got.trailers, KEPT);
  });

  it('takes an HTTP/2 body with content-length as is (no trailer section in HTTP/1.1 then); a wrong length never reaches the app', async () => {
    const body = randomBytes(2048);
    const path = '/signed/h2-length';
    assert.equal(await http2Post(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(body.length) }, body, SMUGGLED), 200);
    const got = received.at(-1)!;
    assert.deepEqual(got.body, body);
    assert.equal(got.headers['content-length'], String(body.length));
    assert.deepEqual(got.trailers, {});
    const before = received.length;
    for (const declared of [body.length - 1, body.length + 1]) {
      const status = await http2Post(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(declared) }, body, {});
      assert.notEqual(status, 200, `content-length ${declared} for ${body.length} bytes`);
    }
    assert.equal(received.length, before);
  });
});

describe('HMAC bodies read whole, to an h2c:// app', () => {
  const rig = useAppBehindSidecar(startH2cApp);
  const { received, keys } = rig;

  it('forwards an HTTP/1.1 chunked body with its trailers, filtered; a Content-Length body without any', async () => {
    const body = randomBytes(3000);
    const path = '/signed/chunked';
    const raw = await rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'transfer-encoding': 'chunked', connection: 'close' }), chunkedBody(body, 4, trailerLines(SMUGGLED))]);
    assert.deepEqual(statuses(raw), [200], raw);
    assert.deepEqual(received.at(-1)!.body, body);
    assert.deepEqual(received.at(-1)!.trailers, KEPT);
    const small = randomBytes(700);
    const raw2 = await rawExchange(rig.t, [head(rig.t, path, { ...signed(rig.t, keys.signer!, path, small), 'content-length': String(small.length), connection: 'close' }), small]);
    assert.deepEqual(statuses(raw2), [200], raw2);
    assert.deepEqual(received.at(-1)!.body, small);
    assert.deepEqual(received.at(-1)!.trailers, {});
  });

  it('forwards an HTTP/2 client\'s body with its trailers, filtered', async () => {
    const body = randomBytes(PREALLOCATED_BODY_BYTES + 100);
    const path = '/signed/h2';
    assert.equal(await http2Post(rig.t, path, { ...signed(rig.t, keys.signer!, path, body), 'content-length': String(body.length) }, body, SMUGGLED), 200);
    assert.deepEqual(received.at(-1)!.body, body);
    assert.deepEqual(received.at(-1)!.trailers, KEPT);
  });
});
