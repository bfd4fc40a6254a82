// workers: 2 with identity.provision — only worker 1 runs the renewal agent (a one-time bootstrap token
// can be spent once, and two agents would each keep their own key); worker 2 picks up the certificate
// the agent writes to identity.dir through its own watcher. Both then serve it and /readyz is 200.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_POLICY, SERVER_ID, startEchoHttpApp, startSidecarProcess, writeSidecarConfig } from '../support/sidecar.js';
import type { EchoHttpApp, SidecarProcess } from '../support/sidecar.js';
import { createToken, initCa, startCaProcess } from '../e2e/mesh.js';
import { freePort } from '../support/ports.js';
import type { CaProcess } from '../e2e/mesh.js';
import { waitFor } from '../support/poll.js';

let tmp: string;
let ca: CaProcess | undefined;
let app: EchoHttpApp | undefined;
let sidecar: SidecarProcess | undefined;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'meshward-'));
  const caDir = join(tmp, 'ca');
  await initCa(caDir, { defaultTtl: '1h', maxTtl: '24h' });
  ca = await startCaProcess(caDir);
  app = await startEchoHttpApp();
  copyFileSync(join(caDir, 'bundle.crt'), join(tmp, 'ca-bundle.crt'));
  writeFileSync(join(tmp, 'policy.yaml'), stringify(DEFAULT_POLICY));
  mkdirSync(join(tmp, 'identity'));
  const token = await createToken(caDir, SERVER_ID);
  const config = writeSidecarConfig(tmp, {
    identity: { dir: './identity', provision: { ca: ca.address, bundle: './ca-bundle.crt', token, spiffeId: SERVER_ID } },
    inbound: { listen: `127.0.0.1:${await freePort()}`, app: app.url },
    policy: './policy.yaml',
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'info' },
    workers: 2,
  });
  sidecar = await startSidecarProcess(config, { timeoutMs: 60_000 });
});

after(async () => {
  await sidecar?.stop();
  await app?.close();
  await ca?.stop();
  rmSync(tmp, { recursive: true, force: true });
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
