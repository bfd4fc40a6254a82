// A policy reload keeps the rate-limit buckets of the `limits` entries that did not change (issue 14,
// item 6): a caller that used its burst is still limited after an unrelated edit of the policy file, even
// when the entry moved in the list. An entry whose rps or burst changed starts with a full bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { stringify } from 'yaml';
import { echoAppScenarios, statusOf } from '../../support/echo-app-scenarios.js';
import { DEFAULT_POLICY, FRONTEND_ID, STRANGER_ID, clientTlsOptions, startSidecarProcess } from '../../support/sidecar.js';

const apps = echoAppScenarios();


// One token per 1000 s: nothing refills during the test.
const frontendLimit = { identities: [FRONTEND_ID], rps: 0.001, burst: 3 };
const otherLimit = { identities: ['spiffe://example.org/ns/other/sa/*'], rps: 5 };

test('unchanged limits keep their buckets across reloads; a changed one starts full', async () => {
  const scenario = apps.scenario({ policy: { ...DEFAULT_POLICY, limits: [frontendLimit] } });
  const sidecar = await startSidecarProcess(scenario.configPath);
  const policyFile = scenario.policyPath;
  const reloads = () => sidecar.logs.filter((l) => l.event === 'policy_reloaded').length;
  const reload = async (policy: object) => {
    const before = reloads();
    writeFileSync(policyFile, stringify(policy));
    await sidecar.waitForLog(() => reloads() > before, 'the policy reload');
    return sidecar.logs.filter((l) => l.event === 'policy_reloaded').at(-1)!;
  };
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const agent = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), keepAlive: true, maxSockets: 1 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push(await statusOf(agent, port, '/orders/1'));
      assert.deepEqual(statuses, [200, 200, 200, 429], 'the burst of 3 is used up');

      // An unrelated edit: a new route, and another limit inserted before ours (ours moves to limits[1]).
      const edited = {
        ...DEFAULT_POLICY,
        routes: [...DEFAULT_POLICY.routes, { match: { path: '/status' }, public: true }],
        limits: [otherLimit, frontendLimit],
      };
      const first = await reload(edited);
      assert.equal(first.rateLimitsKept, 1);
      assert.equal(await statusOf(agent, port, '/orders/1'), 429, 'still limited after the reload');
      // The new policy is in force: its public route answers another caller (limited by the new entry only).
      const stranger = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: STRANGER_ID }), port), keepAlive: false });
      assert.equal(await statusOf(stranger, port, '/status'), 200);
      stranger.destroy();

      // The same limit with another burst is another rule: a fresh bucket.
      const changed = await reload({ ...edited, limits: [otherLimit, { ...frontendLimit, burst: 2 }] });
      assert.equal(changed.rateLimitsKept, 1, 'only the untouched entry');
      assert.deepEqual([await statusOf(agent, port, '/orders/1'), await statusOf(agent, port, '/orders/1'), await statusOf(agent, port, '/orders/1')], [200, 200, 429]);
    } finally {
      agent.destroy();
    }
  } finally {
    await sidecar.stop('SIGKILL');
  }
});
