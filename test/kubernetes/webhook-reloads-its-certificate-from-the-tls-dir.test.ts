// The webhook's certificate is hot-reloaded: when tls.crt/tls.key in --tls-dir are swapped the way the
// kubelet updates a Secret volume (a new ..data generation), new connections get the new certificate
// without a restart; a broken pair (a key that does not match) is logged and the last good one kept.
// It also refuses to start without a usable pair.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { writeSecretFiles } from '../../src/agent/secret-dir.js';
import { makeTestPki } from '../support/pki-fixtures.js';
import { runCli } from '../support/cli.js';
import { startWebhook, writeTlsDir, type WebhookProcess } from './webhook.js';
import { waitFor } from '../support/poll.js';
import { tempDir } from '../support/temp-dir.js';

const pki = makeTestPki();
const { dir, cleanup: removeDir } = tempDir('meshward-webhook-reload-');
let webhook: WebhookProcess | undefined;
after(async () => {
  await webhook?.stop();
  removeDir();
});

/** The serial of the certificate a new TLS connection is served (verified against the bundle). */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.bundlePem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('TLS connect timed out')));
    socket.on('error', reject);
  });
}

const serialOf = (leaf: { der: Buffer }) => new X509Certificate(leaf.der).serialNumber;

test('webhook: a swapped certificate is served to new connections; a broken pair keeps the old one', async () => {
  const tlsDir = join(dir, 'tls');
  const first = pki.leaf({ dns: ['localhost'] });
  const second = pki.leaf({ dns: ['localhost'] });
  writeTlsDir(tlsDir, first);
  webhook = await startWebhook(tlsDir);
  assert.equal(await servedSerial(webhook.port), serialOf(first));

  writeTlsDir(tlsDir, second);
  await waitFor('the new certificate to be served', async () => ((await servedSerial(webhook!.port)) === serialOf(second) ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });

  // A key that does not belong to the certificate: refused, logged, the second certificate still served.
  writeSecretFiles(tlsDir, [
    { name: 'tls.crt', data: first.chainPem, mode: 0o644 },
    { name: 'tls.key', data: second.keyPem, mode: 0o600 },
  ], new Date());
  await waitFor('the broken pair to be refused', () => (webhook!.logs.some((l) => l.event === 'tls_reload_failed') ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
  assert.equal(await servedSerial(webhook.port), serialOf(second));
});

test('webhook serve refuses to start without a usable certificate, in one line', async () => {
  const empty = join(dir, 'empty');
  const missing = await runCli(['webhook', 'serve', '--listen', '127.0.0.1:0', '--tls-dir', empty], { timeoutMs: 30_000 });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^meshward: error: cannot read .*empty\/tls\.crt: ENOENT\n$/);
  const bad = await runCli(['webhook', 'serve', '--listen', 'localhost', '--tls-dir', empty]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--listen "localhost" must be HOST:PORT/);
});
