// The trust bundle API and the server's own certificate: GetTrustBundle serves bundle.crt, WatchTrustBundle
// pushes the new bundle after `meshward ca rotate --root` run by the CLI beside the running server, and the
// serving certificate is renewed in place (new handshakes get the new one, no restart).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { TrustBundleMessage } from '../../src/ca/server/proto.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { runCli } from '../support/cli.js';
import { useCa } from '../support/ca-fixture.js';
import { TD, clientFor, csrFor, trySign } from './harness.js';
import { waitFor } from '../support/poll.js';

function servingSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      const cert = parseCertificate(socket.getPeerCertificate().raw);
      socket.destroy();
      assert.deepEqual(cert.uris, [`spiffe://${TD}/meshward/ca`]);
      assert.deepEqual(cert.ips, ['127.0.0.1']);
      resolve(cert.serialHex);
    });
    socket.on('error', reject);
  });
}

describe('trust bundle and serving certificate', () => {
  const ca = useCa({ inProcess: { options: { servingTtlMs: 3000 } } });

  it('GetTrustBundle returns bundle.crt', async () => {
    const client = clientFor(ca.server, ca.dir);
    try {
      const b = await client.getTrustBundle(10_000);
      assert.equal(b.pem, readFileSync(join(ca.dir, 'bundle.crt'), 'utf8'));
      assert.equal(b.roots.length, 1);
      assert.match(b.sha256, /^[0-9a-f]{64}$/);
    } finally {
      client.close();
    }
  });

  it('WatchTrustBundle sends the bundle at once and again after ca rotate --root', async () => {
    const client = clientFor(ca.server, ca.dir);
    const received: TrustBundleMessage[] = [];
    const stream = client.watchTrustBundle();
    stream.on('data', (m: TrustBundleMessage) => received.push(m));
    stream.on('error', () => undefined);
    try {
      await waitFor('the first bundle', () => received.length >= 1 || undefined, { timeoutMs: 20_000 });
      assert.equal(received[0]!.roots.length, 1);
      const rotate = await runCli(['ca', 'rotate', '--dir', ca.dir, '--root']);
      assert.equal(rotate.code, 0, rotate.stderr);
      const pushed = await waitFor('the rotated bundle', () => received.find((m) => m.roots.length === 2), { timeoutMs: 20_000 });
      assert.equal(pushed.pem, readFileSync(join(ca.dir, 'bundle.crt'), 'utf8'));
      assert.notEqual(pushed.sha256, received[0]!.sha256);
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it('renews its serving certificate without a restart', async () => {
    const bundle = readFileSync(join(ca.dir, 'bundle.crt'));
    const first = await servingSerial(ca.server.port, bundle);
    assert.equal(first, ca.server.servingIdentity.serialHex);
    const leaf = await waitFor('a renewed serving certificate', async () => {
      const now = await servingSerial(ca.server.port, bundle);
      return now !== first ? now : undefined;
    }, { timeoutMs: 20_000 });
    assert.notEqual(leaf, first);
    // The renewed certificate still proves the CA's identity to clients that check it.
    const client = clientFor(ca.server, ca.dir);
    try {
      const b = await client.getTrustBundle(10_000);
      assert.ok(b.roots.length >= 1);
      const r = await trySign(client, { csr: csrFor(`spiffe://${TD}/ns/a/sa/b`).csr });
      assert.equal(r.ok, false, 'no credential, refused, but over a working TLS connection');
    } finally {
      client.close();
    }
  });
});
