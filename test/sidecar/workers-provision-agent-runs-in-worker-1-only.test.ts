// workers: 2 with identity.provision — only worker 1 runs the renewal agent (a one-time bootstrap token
// can be spent once, and two agents would each keep their own key); worker 2 picks up the certificate
// the agent writes to identity.dir through its own watcher. Both then serve it and /readyz is 200.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER_ID, startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, SidecarProcess } from '../support/sidecar.js';
import { initCa, startCaProcess, writeProvisionedPod } from '../e2e/mesh.js';
import { freePort } from '../support/ports.js';
import type { CaProcess } from '../e2e/mesh.js';
import { waitFor } from '../support/poll.js';
import { tempDir, type TempDir } from '../support/temp-dir.js';

let t: TempDir;
let ca: CaProcess | undefined;
let app: EchoHttpApp | undefined;
let sidecar: SidecarProcess | undefined;

before(async () => {
  t = tempDir();
  const caDir = t.path('ca');
  await initCa(caDir, { defaultTtl: '1h', maxTtl: '24h' });
  ca = await startCaProcess(caDir);
  app = await startEchoHttpApp();
  const config = await writeProvisionedPod(t.dir, { caDir, ca, app: app.url, spiffeId: SERVER_ID, listen: `127.0.0.1:${await freePort()}`, config: { workers: 2 } });
  sidecar = await startSidecarProcess(config, { timeoutMs: 60_000 });
});

after(async () => {
  await sidecar?.stop();
  await app?.close();
  await ca?.stop();
  t?.cleanup();
});

test('worker 1 provisions the certificate, worker 2 loads the same one from identity.dir', async () => {
  const s = sidecar!;
  await s.waitUntilReady(60_000);
  const written = s.logs.filter((l) => l.msg === 'certificate written');
  assert.equal(written.length, 1, 'one certificate requested');
  assert.equal(written[0]!.worker, 1, 'by worker 1');
  const loaded = await waitFor('both workers to load it', () => {
    const lines = s.logs.filter((l) => l.event === 'credentials_loaded');
    return lines.length === 2 ? lines : undefined;
  });
  assert.deepEqual(loaded.map((l) => Number(l.worker)).sort(), [1, 2]);
  for (const l of loaded) {
    assert.equal(l.identity, SERVER_ID);
    assert.equal(l.serial, written[0]!.serial, 'the certificate the agent wrote');
  }
  const refusals = s.logs.filter((l) => l.worker === 2 && /token|certificate request failed|agent/i.test(l.msg));
  assert.deepEqual(refusals, [], 'worker 2 never ran an agent');
});
