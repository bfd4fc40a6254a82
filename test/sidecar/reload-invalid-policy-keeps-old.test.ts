// Policy files are hot-reloaded like certificates: an invalid new policy (a typo'd key, broken YAML)
// keeps the old one, is counted as reloads{kind=policy,result=failure} and logged with the reason;
// /readyz stays 200; a valid change afterwards takes effect for new connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { DEFAULT_POLICY, FRONTEND_ID, clientTlsOptions, metricValue, tcpRoundTrip } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp');

async function policyReloads(result: 'success' | 'failure'): Promise<number> {
  return metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'policy', result });
}

const cases: [string, string][] = [
  ['an unknown key (a typo must not silently change access)', stringify({ ...DEFAULT_POLICY, grantz: [] })],
  ['broken YAML', 'grants: [\n  - identities: ["spiffe://example.org/x"\n'],
  ['an empty file', ''],
];

for (const [name, text] of cases) {
  test(`${name} keeps the old policy`, async () => {
    const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
    const before = await policyReloads('failure');
    writeFileSync(rig.scenario.policyPath, text);
    await waitFor('the failed policy reload to be counted', async () => ((await policyReloads('failure')) > before ? true : undefined));
    assert.equal((await tcpRoundTrip(options, 'granted still')).result, 'echoed', 'the old policy still grants the tcp scope');
    assert.equal((await rig.sidecar.readyz()).status, 200);
    assert.ok(rig.sidecar.logs.some((l) => l.event === 'policy_reload_failed' && typeof l.reason === 'string' && l.reason !== ''));
  });
}

test('a valid new policy takes effect: the revoked grant no longer connects', async () => {
  const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
  const before = await policyReloads('success');
  const grants = [
    { identities: [FRONTEND_ID], scopes: ['orders:read'] },
    { identities: ['spiffe://example.org/ns/ops/sa/admin'], scopes: ['orders:write', 'redis:connect'] },
  ];
  writeFileSync(rig.scenario.policyPath, stringify({ ...DEFAULT_POLICY, grants }));
  await waitFor('the policy reload to succeed', async () => ((await policyReloads('success')) > before ? true : undefined));
  assert.equal((await tcpRoundTrip(options, 'no longer')).result, 'refused');
});
