// Issue 4, "Must show": the CA server, the agent and the sidecar with 1-minute certificates. The orders
// sidecar provisions its own identity (identity.provision: the agent runs in-process, bootstrapped with a
// token from `meshward token create`) and renews it at least 3 times while a client calls through it
// every ~75 ms, over keep-alive and fresh connections alike. Every renewal is reloaded (new connections
// see each new serial) and no request fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { FRONTEND_ID, SERVER_ID, metricValue, startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, SidecarProcess } from '../support/sidecar.js';
import { httpsGet, initCa, issueCert, startCaProcess, writeProvisionedPod } from './mesh.js';
import type { CaProcess } from './mesh.js';
import type { LogLine } from '../support/json-log.js';
import { tempDir, type TempDir } from '../support/temp-dir.js';
import { sleep } from '../support/poll.js';

const RENEWALS = 3;
/** 3 renewals of a 1-minute certificate take ~2 minutes (renewal at 2/3 of the lifetime, minus jitter). */
const LOOP_DEADLINE_MS = 170_000;
const INTERVAL_MS = 75;

describe('renewals through the sidecar (1-minute certificates, in-process agent)', { timeout: 240_000 }, () => {
  let t: TempDir;
  let tmp: string;
  let caDir: string;
  let ca: CaProcess | undefined;
  let app: EchoHttpApp | undefined;
  let sidecar: SidecarProcess | undefined;
  const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 2 });

  before(async () => {
    t = tempDir();
    tmp = t.dir;
    caDir = join(tmp, 'ca');
    await initCa(caDir, { defaultTtl: '1m', maxTtl: '1h' });
    ca = await startCaProcess(caDir);
    app = await startEchoHttpApp();
    const config = await writeProvisionedPod(tmp, { caDir, ca, app: app.url, spiffeId: SERVER_ID, ttl: '1m' });
    await issueCert(caDir, FRONTEND_ID, join(tmp, 'client'));
    sidecar = await startSidecarProcess(config, { timeoutMs: 60_000 });
  });

  after(async () => {
    keepAlive.destroy();
    await sidecar?.stop();
    await app?.close();
    await ca?.stop();
    t?.cleanup();
  });

  it(`reloads ${RENEWALS} renewals while a client calling the whole time sees zero failures`, async (t) => {
    const sc = sidecar!;
    const port = await sc.waitForInbound(60_000);
    await sc.waitUntilReady(30_000);
    const loaded = await sc.waitForLog((l) => l.event === 'credentials_loaded', 'the first certificate');
    assert.equal(loaded.identity, SERVER_ID);

    const clientDir = join(tmp, 'client');
    const tls = {
      cert: readFileSync(join(clientDir, 'tls.crt')),
      key: readFileSync(join(clientDir, 'tls.key')),
      ca: readFileSync(join(caDir, 'bundle.crt')),
      serverId: SERVER_ID,
    };
    const reloads = (): LogLine[] => sc.logs.filter((l) => l.event === 'credentials_reloaded');
    const failures: string[] = [];
    const presentedOnFresh = new Set<string>();
    let ok = 0;
    let reused = 0;
    let fresh = 0;
    const start = Date.now();
    let doneAt: number | undefined;
    for (let i = 0; Date.now() - start < LOOP_DEADLINE_MS; i++) {
      // Keep going a few seconds past the last renewal so new connections can show its serial.
      if (doneAt === undefined && reloads().length >= RENEWALS) doneAt = Date.now();
      if (doneAt !== undefined && Date.now() - doneAt > 3_000) break;
      const useFresh = i % 2 === 0;
      try {
        const r = await httpsGet(`https://127.0.0.1:${port}/orders/${i}`, tls, useFresh ? false : keepAlive);
        const echoed = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
        if (r.status !== 200 || echoed.url !== `/orders/${i}` || echoed.headers['x-mesh-client-id'] !== FRONTEND_ID) {
          failures.push(`#${i}: ${r.status} ${r.body.slice(0, 200)}`);
        } else {
          ok++;
          if (r.reusedSocket) reused++;
          if (useFresh) {
            fresh++;
            if (r.serial) presentedOnFresh.add(r.serial);
          }
        }
      } catch (err) {
        failures.push(`#${i} (${useFresh ? 'fresh' : 'keep-alive'}): ${(err as Error).message}`);
      }
      await sleep(INTERVAL_MS);
    }

    t.diagnostic(`${ok} requests succeeded (${fresh} on fresh connections, ${reused} on reused ones), ${failures.length} failed; serials presented: ${[...presentedOnFresh].join(' ')}`);
    assert.deepEqual(failures, [], `failed requests (of ${ok + failures.length})`);
    const renewed = reloads();
    assert.ok(renewed.length >= RENEWALS, `only ${renewed.length} renewals reloaded within the loop; logs: ${JSON.stringify(sc.logs.slice(-5))}`);
    const loggedSerials = [String(loaded.serial), ...renewed.map((l) => String(l.serial))];
    assert.equal(new Set(loggedSerials).size, loggedSerials.length, 'every reload brought a new certificate');
    // Each certificate the sidecar loaded was presented on new connections, and nothing else was.
    assert.ok(presentedOnFresh.size >= RENEWALS + 1, `distinct serials presented: ${[...presentedOnFresh].join(', ')}`);
    for (const s of presentedOnFresh) assert.ok(loggedSerials.includes(s), `serial ${s} was presented but never loaded`);
    for (const s of loggedSerials.slice(0, RENEWALS + 1)) assert.ok(presentedOnFresh.has(s), `serial ${s} was loaded but never presented`);
    assert.ok(reused > 0 && fresh > 0, `both keep-alive reuse (${reused}) and fresh connections (${fresh}) were exercised`);
    // Every renewal came from the in-process agent, not from a file dropped in by hand.
    for (const l of renewed) assert.equal(l.identity, SERVER_ID);
    const metrics = await sc.metrics();
    assert.ok(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'success' }) >= RENEWALS + 1);
    assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0);
    // The CA audited one token bootstrap and then mTLS renewals only.
    const signs = ca!.logs.filter((l) => l.event === 'sign' && l.identity === SERVER_ID);
    assert.equal(signs.filter((l) => l.result === 'issued' && l.method === 'token').length, 1);
    assert.ok(signs.filter((l) => l.result === 'issued' && l.method === 'mtls').length >= RENEWALS);
    assert.ok(signs.every((l) => l.result === 'issued'), `refused Sign calls: ${JSON.stringify(signs.filter((l) => l.result !== 'issued'))}`);
  });
});
