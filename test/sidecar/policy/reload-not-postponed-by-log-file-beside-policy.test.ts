// The policy's folder may hold a file that changes all the time, such as the sidecar's own log file. A
// write to it every 50 ms must not postpone a policy change (issue 14, item 9): the watch reacts only to
// the names it loads and waits at most a bounded time after an event. The periodic re-check is set to
// 10 minutes here, so only the watch can apply the change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { echoAppScenarios } from '../../support/echo-app-scenarios.js';
import { DEFAULT_POLICY, startSidecarProcess } from '../../support/sidecar.js';

const apps = echoAppScenarios();

test('a log file written every 50 ms beside the policy does not hold back a policy change', async () => {
  const scenario = apps.scenario({ config: { identity: { dir: './identity', recheckInterval: '10m' } } });
  const sidecar = await startSidecarProcess(scenario.configPath);
  const noisy = join(scenario.tmp, 'sidecar.log');
  let written = 0;
  const writer = setInterval(() => appendFileSync(noisy, `{"line":${written++}}\n`), 50);
  try {
    await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    // Let the noise run for a while first: a debounce without a maximum would be restarting all along.
    while (written < 20) await new Promise((r) => setTimeout(r, 50));
    writeFileSync(scenario.policyPath, stringify({ ...DEFAULT_POLICY, mode: 'audit' }));
    const reloaded = await sidecar.waitForLog((l) => l.event === 'policy_reloaded', 'the policy reload while the log file keeps changing', 30_000);
    assert.equal(reloaded.mode, 'audit');
    assert.ok(written > 20, 'the noisy file was still being written');
    assert.equal(sidecar.logs.filter((l) => l.event === 'policy_reloaded').length, 1, 'one reload for one change, none for the noise');
  } finally {
    clearInterval(writer);
    await sidecar.stop('SIGKILL');
  }
});
