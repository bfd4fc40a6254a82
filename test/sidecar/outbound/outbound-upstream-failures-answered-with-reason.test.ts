// What the app gets when the upstream of an outbound listener cannot be used, one listener per failure:
// nothing listens (502, "refused the connection"), a port that accepts and never completes TLS (504
// after connectTimeout), a certificate from a foreign CA (502, does not chain), a certificate the
// sidecar's crl.pem revokes (502, revoked). Each answer names the reason; each failure is counted in
// meshward_outbound_failures_total by reason; a good upstream beside them still answers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER_ID, serverLeaf } from '../../support/sidecar.js';
import { makeTestPki } from '../../support/pki-fixtures.js';
import type { TestLeaf } from '../../support/pki-fixtures.js';
import { closedPort } from '../../support/ports.js';
import { appCall, httpsUpstream, silentUpstream, startOutboundRig, type OutboundRig, type Upstream } from '../../support/outbound.js';

const pki = makeTestPki();
let rig: OutboundRig;
const upstreams: Upstream[] = [];
const ports: Record<string, number> = {};
let revokedLeaf: TestLeaf;

const answer = (_req: unknown, res: import('node:http').ServerResponse) => res.end('upstream ok');

before(async () => {
  revokedLeaf = serverLeaf(pki);
  const good = await httpsUpstream(pki, serverLeaf(pki), answer);
  const silent = await silentUpstream();
  const foreign = await httpsUpstream(pki, pki.leaf({ shape: 'untrusted-ca', spiffeId: SERVER_ID, dns: ['localhost'], ips: ['127.0.0.1'] }), answer);
  const revoked = await httpsUpstream(pki, revokedLeaf, answer);
  upstreams.push(good, silent, foreign, revoked);
  Object.assign(ports, { good: good.port, down: await closedPort(), silent: silent.port, foreign: foreign.port, revoked: revoked.port });
  const names = ['good', 'down', 'silent', 'foreign', 'revoked'];
  rig = await startOutboundRig(
    () => names.map((n) => ({ listen: '127.0.0.1:0', upstream: `127.0.0.1:${ports[n]}`, identity: SERVER_ID, connectTimeout: '1s' })),
    { pki, crl: (p) => p.crlFor(p.root, []) + p.crlFor(p.intermediate, [revokedLeaf]) },
  );
  names.forEach((n, i) => (ports[`listener:${n}`] = rig.ports[i]!));
});

after(async () => {
  await rig?.close();
  for (const u of upstreams) await u.close();
});

const cases: [name: string, status: number, reason: RegExp, label: string][] = [
  ['down', 502, /refused the connection/, 'connect_refused'],
  ['silent', 504, /did not complete the connection .*within 1000 ms \(connectTimeout\)/, 'connect_timeout'],
  ['foreign', 502, /does not chain to ca\.crt/, 'tls_refused'],
  ['revoked', 502, /revoked certificate/, 'tls_refused'],
];

for (const [name, status, reason, label] of cases) {
  test(`upstream ${name}: ${status} naming the reason, counted as ${label}`, async () => {
    const upstream = `127.0.0.1:${ports[name]}`;
    const before = await rig.metric('meshward_outbound_failures_total', { upstream, reason: label });
    const r = await appCall(ports[`listener:${name}`]!, '/orders/1');
    assert.equal(r.status, status, r.body);
    assert.match(JSON.parse(r.body).reason, reason);
    assert.equal(await rig.metric('meshward_outbound_failures_total', { upstream, reason: label }), before + 1);
    assert.equal(await rig.metric('meshward_outbound_requests_total', { upstream }), 1);
  });
}

test('a good upstream beside them answers, and its latency is recorded', async () => {
  const r = await appCall(ports['listener:good']!, '/orders/1');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'upstream ok');
  assert.equal(await rig.metric('meshward_outbound_request_duration_seconds_count', { upstream: `127.0.0.1:${ports.good}` }), 1);
});
