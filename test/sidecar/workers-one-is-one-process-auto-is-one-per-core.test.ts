// The --workers override: `--workers 1` over a config saying `workers: 2` runs today's single process
// (no child process at all, yet it serves mTLS and drains on SIGTERM); `--workers auto` forks one
// worker per core (os.availableParallelism(); on a one-core machine that is again a single process).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { httpGet, startEchoHttpApp } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario } from '../support/sidecar.js';
import { frontendLeaf, makeWorkersScenario, mtlsGet } from '../support/workers.js';
import { MESHWARD_BIN } from '../support/cli.js';
import { type LogLine } from '../support/json-log.js';
import { waitFor } from '../support/poll.js';

let app: EchoHttpApp;
const scenarios: Scenario[] = [];
const children: ChildProcess[] = [];

before(async () => {
  app = await startEchoHttpApp();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await app?.close();
  for (const s of scenarios) s.cleanup();
});

/** `meshward sidecar --config F --workers W`, with its JSON log lines collected and its exit awaited. */
function run(configPath: string, workers: string): { child: ChildProcess; logs: LogLine[]; exited: Promise<number | string> } {
  const child = spawn(process.execPath, [MESHWARD_BIN, 'sidecar', '--config', configPath, '--workers', workers], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const logs: LogLine[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) logs.push(JSON.parse(line) as LogLine);
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, logs, exited };
}

/** Direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

test('--workers 1 overrides workers: 2 and runs one process with no children', async () => {
  const { scenario, port } = await makeWorkersScenario(app.url, 2);
  scenarios.push(scenario);
  const { child, logs, exited } = run(scenario.configPath, '1');
  const admin = await waitFor('the admin server', () => logs.find((l) => l.event === 'admin_listening'), { timeoutMs: 30_000 });
  await waitFor('/readyz 200', async () => ((await httpGet(`http://${String(admin.address)}/readyz`)).status === 200 ? true : undefined), { timeoutMs: 30_000 });
  assert.equal((await mtlsGet(scenario.pki, frontendLeaf(scenario.pki), port, '/orders/1')).status, 200);
  assert.deepEqual(childrenOf(child.pid!), [], 'no worker processes');
  assert.equal(logs.filter((l) => l.event === 'worker_forked' || l.worker !== undefined).length, 0, 'no worker log lines');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('--workers auto forks one worker per core', async () => {
  const cores = availableParallelism();
  const { scenario, port } = await makeWorkersScenario(app.url, 1);
  scenarios.push(scenario);
  const { child, logs, exited } = run(scenario.configPath, 'auto');
  const admin = await waitFor('the admin server', () => logs.find((l) => l.event === 'admin_listening'), { timeoutMs: 30_000 });
  await waitFor('/readyz 200', async () => ((await httpGet(`http://${String(admin.address)}/readyz`)).status === 200 ? true : undefined), { timeoutMs: 30_000 });
  assert.equal((await mtlsGet(scenario.pki, frontendLeaf(scenario.pki), port, '/orders/1')).status, 200);
  if (cores === 1) {
    assert.deepEqual(childrenOf(child.pid!), []);
  } else {
    assert.equal(logs.find((l) => l.event === 'workers_starting')?.workers, cores);
    const started = logs.filter((l) => l.event === 'worker_started').map((l) => Number(l.pid));
    assert.deepEqual(childrenOf(child.pid!).sort(), started.sort(), 'the children are exactly the started workers');
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
