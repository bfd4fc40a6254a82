// The inbound listener reads the client's leaf from the TLS session instead of asking OpenSSL for a copy
// (peer-certificates.ts says why), and judges each distinct leaf once. Proven here over real TLS on
// 127.0.0.1: the bytes are exactly the certificate OpenSSL verified, on TLS 1.2 and 1.3, on a resumed
// session, with a chain, and absent without a client certificate; the cache hands back one shared
// Identity per certificate, keeps its refusals, and forgets the oldest entry when full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { PeerCertificates, judgeClientLeaf, leafFromSession, peerLeafDer } from '../../src/sidecar/tls/peer-certificates.js';
import { makeTestPki } from '../support/pki-fixtures.js';

const pki = makeTestPki();
const server = pki.leaf({ spiffeId: 'spiffe://example.org/ns/shop/sa/orders' });
const client = pki.leaf({ spiffeId: 'spiffe://example.org/ns/shop/sa/frontend' });

interface Seen {
  fromSession: Buffer | undefined;
  fromOpenSsl: Buffer | undefined;
  resumed: boolean;
}

/** A TLS server that records, for each connection, the leaf both ways. */
async function recordingServer(version: 'TLSv1.2' | 'TLSv1.3'): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const srv = tls.createServer(
    { key: server.keyPem, cert: server.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: false, minVersion: version, maxVersion: version },
    (socket) => {
      seen.push({ fromSession: peerLeafDer(socket), fromOpenSsl: socket.getPeerX509Certificate()?.raw, resumed: socket.isSessionReused() });
      socket.end('ok');
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/** One connection; resolves with the session the client can resume with (TLS 1.3 sends it after the handshake). */
function connect(port: number, opts: { cert?: boolean; session?: Buffer } = {}): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const s = tls.connect({
      host: '127.0.0.1', port, ca: pki.bundlePem, servername: 'orders', checkServerIdentity: () => undefined,
      ...(opts.cert !== false ? { key: client.keyPem, cert: client.chainPem } : {}),
      ...(opts.session ? { session: opts.session } : {}),
    });
    s.on('session', (b: Buffer) => (session = b));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => resolve(session ?? s.getSession()));
  });
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`${version}: the leaf read from the session is the certificate OpenSSL verified, also when resumed`, async (t) => {
    const srv = await recordingServer(version);
    t.after(srv.close);
    const session = await connect(srv.port);
    assert.ok(session, 'the client got a session to resume');
    await connect(srv.port, { session });
    assert.equal(srv.seen.length, 2);
    assert.equal(srv.seen[1]!.resumed, true, 'the second connection resumed');
    for (const s of srv.seen) {
      assert.ok(s.fromSession, 'a leaf came out of the session');
      assert.deepEqual(s.fromSession, s.fromOpenSsl);
      assert.deepEqual(s.fromSession, client.der, 'the leaf, not its intermediate');
    }
  });
}

test('without a client certificate there is no leaf', async (t) => {
  const srv = await recordingServer('TLSv1.3');
  t.after(srv.close);
  await connect(srv.port, { cert: false });
  assert.equal(srv.seen.length, 1);
  assert.equal(srv.seen[0]!.fromSession, undefined);
  assert.equal(srv.seen[0]!.fromOpenSsl, undefined);
});

test('a session that is not an SSL_SESSION structure yields nothing (the caller falls back)', () => {
  for (const junk of [Buffer.alloc(0), Buffer.from('not der'), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), client.der]) {
    assert.equal(leafFromSession(junk), undefined);
  }
});

test('one frozen Identity per distinct certificate; refusals are remembered with their reason', () => {
  const cache = new PeerCertificates(2);
  const a = cache.judge(client.der);
  const b = cache.judge(Buffer.from(client.der));
  assert.ok(a.ok && b.ok);
  assert.equal(a.identity, b.identity, 'the same bytes give the same object');
  assert.ok(Object.isFrozen(a.identity));
  assert.equal(a.identity.spiffeId, 'spiffe://example.org/ns/shop/sa/frontend');

  const caLeaf = cache.judge(pki.intermediate.der);
  assert.deepEqual({ ok: caLeaf.ok, reason: caLeaf.ok ? '' : caLeaf.reason }, { ok: false, reason: 'ca_as_leaf' });
  const twoUris = judgeClientLeaf(pki.leaf({ shape: 'two-uris' }).der);
  assert.deepEqual({ ok: twoUris.ok, reason: twoUris.ok ? '' : twoUris.reason }, { ok: false, reason: 'multiple_uri_sans' });
  const garbage = judgeClientLeaf(Buffer.from([0x30, 0x01, 0x00]));
  assert.deepEqual({ ok: garbage.ok, reason: garbage.ok ? '' : garbage.reason }, { ok: false, reason: 'unparsable_certificate' });

  // Capacity 2: the client leaf (oldest) was forgotten when a third certificate came.
  cache.judge(pki.leaf({ spiffeId: 'spiffe://example.org/ns/shop/sa/cart' }).der);
  assert.equal(cache.size, 2);
  const again = cache.judge(client.der);
  assert.ok(again.ok);
  assert.notEqual(again.identity, a.identity, 'judged afresh after being forgotten');
  assert.deepEqual(again.identity, a.identity);
});
