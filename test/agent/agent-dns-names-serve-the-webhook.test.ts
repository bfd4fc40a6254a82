// `meshward agent --dns`: the certificate it gets (and every renewal over mTLS) names the host too, so a
// server reached by host name, such as the admission webhook, can be kept certified by the agent: the
// webhook started on the agent's folder is verified by a client that checks that host name. A bad name
// is refused before any request.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Agent, type RenewedEvent } from '../../src/agent/agent.js';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { createBootstrapToken } from '../../src/ca/tokens.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { runCli } from '../support/cli.js';
import { TD } from '../ca-service/harness.js';
import { waitFor } from '../support/poll.js';
import { useCa } from '../support/ca-fixture.js';
import { startWebhook, type WebhookProcess } from '../kubernetes/webhook.js';

const ID = `spiffe://${TD}/ns/meshward-system/sa/meshward-webhook`;
const HOST = 'meshward-webhook.meshward-system.svc';
let agent: Agent | undefined;
let webhook: WebhookProcess | undefined;
after(async () => { // registered first, so they stop before the CA
  await webhook?.stop();
  await agent?.stop();
});
const ca = useCa({ inProcess: {} });

const leafDns = (out: string) => parseCertificate(decodePem(readFileSync(join(out, 'tls.crt')))[0]!.der).dns;

test('agent --dns: the bootstrap and the renewals name the host; the webhook serves that certificate', async () => {
  const store = SqliteStore.open(join(ca.dir, 'ca.db'));
  const token = (await createBootstrapToken(store, ID, 600_000, new Date())).token;
  await store.close();
  const out = join(ca.root, 'webhook-tls');
  agent = new Agent({ ca: `127.0.0.1:${ca.server.port}`, bundleFile: join(ca.dir, 'bundle.crt'), outDir: out, spiffeId: ID, dns: [HOST], token, ttlMs: 10_000, backoff: { initialMs: 200, maxMs: 1000 } });
  const renewed: RenewedEvent[] = [];
  agent.on('renewed', (e: RenewedEvent) => renewed.push(e));
  await agent.start();
  assert.deepEqual(leafDns(out), [HOST]);
  await waitFor('a renewal over mTLS', () => renewed.some((e) => e.method === 'mtls') || undefined, { timeoutMs: 60_000 });
  assert.deepEqual(leafDns(out), [HOST], 'the renewal keeps the name');

  webhook = await startWebhook(out);
  const verified = await new Promise<boolean>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: webhook!.port, servername: HOST, ca: readFileSync(join(ca.dir, 'bundle.crt')) }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.on('error', reject);
  });
  assert.equal(verified, true, `a client checking ${HOST} accepts the webhook`);
});

test('agent --dns refuses a name that is not a hostname, before any request', async () => {
  const r = await runCli(['agent', '--ca', `127.0.0.1:${ca.server.port}`, '--bundle', join(ca.dir, 'bundle.crt'), '--out', join(ca.root, 'x'), '--spiffe-id', ID, '--token', 'x', '--dns', 'bad_name!']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /DNS name "bad_name!" is not a valid hostname/);
});
