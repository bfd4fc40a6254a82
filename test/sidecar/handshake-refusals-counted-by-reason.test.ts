// Every client certificate that must not get in is refused at the handshake, never reaches the app,
// and is counted in /metrics under its own reason: no certificate, expired, not yet valid, another CA,
// revoked (crl.pem in identity.dir), a CA certificate as leaf, serverAuth-only EKU, two URI SANs.
// Real clients: node's tls, `openssl s_client` and curl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, tcpRoundTrip } from '../support/sidecar.js';
import { makeTestPki } from '../support/pki-fixtures.js';
import type { LeafShape, TestLeaf } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

let revoked: TestLeaf;
const rig = runningSidecar('tcp', {
  // The scenario's PKI is made inside makeScenario; the CRL must come from the same CAs, so build the
  // scenario first and then add crl.pem (the sidecar picks it up like any credential change).
  prepare(scenario) {
    revoked = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    writeFileSync(
      join(scenario.identityDir, 'crl.pem'),
      scenario.pki.crlFor(scenario.pki.root, []) + scenario.pki.crlFor(scenario.pki.intermediate, [revoked]),
    );
  },
});

async function failures(reason: string): Promise<number> {
  return metricValue(await rig.sidecar.metrics(), 'meshward_handshake_failures_total', { reason });
}

/** Runs a client, then waits until the failure shows up under `reason` (the count is exact: +1). */
async function assertRefusedAs(reason: string, attempt: () => Promise<'echoed' | 'refused'>): Promise<void> {
  const before = await failures(reason);
  const acceptedBefore = rig.app.accepted;
  assert.equal(await attempt(), 'refused');
  await waitFor(`handshake_failures{reason=${reason}} to reach ${before + 1}`, async () => ((await failures(reason)) === before + 1 ? true : undefined));
  assert.equal(rig.app.accepted, acceptedBefore, 'a refused client must never reach the app');
  const line = await rig.sidecar.waitForLog((l) => l.event === 'handshake_refused' && l.reason === reason, `a log line for ${reason}`);
  assert.match(String(line.peer), /^127\.0\.0\.1:\d+$/);
}

function nodeClient(leaf: TestLeaf | undefined, extra = {}): () => Promise<'echoed' | 'refused'> {
  return async () => (await tcpRoundTrip(clientTlsOptions(rig.scenario.pki, leaf, rig.port, extra), 'ping')).result;
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

test('the granted identity gets through (the refusals below are not a broken listener)', async () => {
  assert.equal(await nodeClient(rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }))(), 'echoed');
});

test('no client certificate (openssl s_client): no_certificate', async () => {
  const files = rig.scenario.clientFiles(rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), 'unused');
  await assertRefusedAs('no_certificate', async () => {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${rig.port}`, '-CAfile', files.ca, '-servername', 'localhost', '-quiet'], 'ping\n');
    return r.stdout.includes('ping') ? 'echoed' : 'refused';
  });
});

const shapes: [LeafShape, string][] = [
  ['expired', 'expired'],
  ['not-yet-valid', 'not_yet_valid'],
  ['untrusted-ca', 'untrusted'],
  ['ca-as-leaf', 'ca_as_leaf'],
  ['server-auth-only', 'bad_key_usage'],
  ['two-uris', 'multiple_uri_sans'],
];

for (const [shape, reason] of shapes) {
  test(`a ${shape} client certificate (node tls): ${reason}`, async () => {
    await assertRefusedAs(reason, nodeClient(rig.scenario.pki.leaf({ shape, spiffeId: FRONTEND_ID })));
  });
}

test('a revoked client certificate (openssl s_client, TLS 1.2): revoked', async () => {
  const files = rig.scenario.clientFiles(revoked, 'revoked');
  await assertRefusedAs('revoked', async () => {
    // -cert sends only the leaf; -cert_chain adds the intermediate the sidecar needs to build the path.
    const r = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${rig.port}`, '-CAfile', files.ca, '-cert', files.cert, '-cert_chain', files.cert, '-key', files.key, '-servername', 'localhost', '-tls1_2', '-quiet'],
      'ping\n',
    );
    return r.stdout.includes('ping') ? 'echoed' : 'refused';
  });
});

test('a certificate from another CA with the same names (curl): untrusted', async () => {
  const other = makeTestPki(); // an unrelated root + intermediate, identical subject names
  const files = rig.scenario.clientFiles(other.leaf({ spiffeId: FRONTEND_ID }), 'other-ca');
  await assertRefusedAs('untrusted', async () => {
    // curl speaks HTTP, the app is a TCP echo: what matters is whether the handshake survives.
    const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', files.ca, '--cert', files.cert, '--key', files.key, `https://localhost:${rig.port}/`]);
    return r.stdout.includes('GET /') ? 'echoed' : 'refused';
  });
});
