// Issue 4, "Must show": a root rotation under load. Two workloads, alpha and beta, each a sidecar that
// provisions its own 1-minute identity in-process (identity.provision) and calls the other through an
// outbound listener. While they talk in both directions (through the sidecars' outbound → inbound path,
// and with fresh mTLS connections made from each workload's current files), the CA rotates its root
// (`ca rotate --root --activate-in 0s`): the agents follow WatchTrustBundle so both ca.crt files carry
// old and new roots, then each renewal moves a workload onto the new chain, so for a while an old-chain
// and a new-chain workload talk to each other. No request fails through the whole rotation, and
// `ca rotate --finish` is refused while old-chain certificates are still valid, saying when it will be safe;
// at that time it succeeds, the agents push the one-root bundle, and the workloads keep talking.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { httpGet, startEchoHttpApp, startSidecarProcess, writeSidecarConfig } from '../support/sidecar.js';
import type { EchoHttpApp, SidecarProcess } from '../support/sidecar.js';
import { freePort } from '../support/ports.js';
import { TD } from '../support/pki-fixtures.js';
import { certificatesIn, createToken, httpsGet, initCa, readWorkloadFiles, startCaProcess } from './mesh.js';
import type { CaProcess, WorkloadFiles } from './mesh.js';
import { sleep, waitFor } from '../support/poll.js';
import { tempDir } from '../support/temp-dir.js';

const ALPHA = `spiffe://${TD}/ns/mesh/sa/alpha`;
const BETA = `spiffe://${TD}/ns/mesh/sa/beta`;
const INTERVAL_MS = 100;

type Chain = 'old' | 'new';
type Direction = 'alpha→beta outbound' | 'beta→alpha outbound' | 'alpha→beta direct' | 'beta→alpha direct';

interface Workload {
  name: 'alpha' | 'beta';
  id: string;
  peerId: string;
  dir: string;
  inboundPort: number;
  app?: EchoHttpApp;
  sidecar?: SidecarProcess;
  outboundPort?: number;
}

/** A workload's files, retried when the agent swaps ..data and prunes a generation between two reads. */
function currentFiles(w: Workload): WorkloadFiles {
  for (let attempt = 0; ; attempt++) {
    try {
      return readWorkloadFiles(w.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

describe('root rotation under load', { timeout: 240_000 }, () => {
  let tmp: string;
let removeTmp = (): void => {};
  let caDir: string;
  let ca: CaProcess | undefined;
  let oldIntermediate: Buffer;
  const workloads: Workload[] = [];
  const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 2 });

  before(async () => {
    ({ dir: tmp, cleanup: removeTmp } = tempDir());
    caDir = join(tmp, 'ca');
    await initCa(caDir, { defaultTtl: '1m', maxTtl: '1h' });
    oldIntermediate = certificatesIn(readFileSync(join(caDir, 'intermediate.crt')))[0]!;
    ca = await startCaProcess(caDir);
    copyFileSync(join(caDir, 'bundle.crt'), join(tmp, 'ca-bundle.crt'));
    const [alphaPort, betaPort] = [await freePort(), await freePort()];
    workloads.push(
      { name: 'alpha', id: ALPHA, peerId: BETA, dir: join(tmp, 'alpha', 'identity'), inboundPort: alphaPort },
      { name: 'beta', id: BETA, peerId: ALPHA, dir: join(tmp, 'beta', 'identity'), inboundPort: betaPort },
    );
    for (const w of workloads) {
      mkdirSync(w.dir, { recursive: true });
      w.app = await startEchoHttpApp();
      const peer = workloads.find((p) => p !== w)!;
      writeSidecarConfig(join(tmp, w.name), {
        identity: { dir: './identity', provision: { ca: ca.address, bundle: '../ca-bundle.crt', token: await createToken(caDir, w.id), spiffeId: w.id, ttl: '1m' } },
        inbound: { listen: `127.0.0.1:${w.inboundPort}`, app: w.app.url },
        outbound: [{ listen: '127.0.0.1:0', upstream: `127.0.0.1:${peer.inboundPort}`, identity: peer.id }],
        policy: {
          mode: 'enforce',
          grants: [{ identities: [peer.id], scopes: ['echo:read'] }],
          routes: [{ match: { methods: ['GET'], path: '/**' }, scope: 'echo:read' }],
        },
        admin: { listen: '127.0.0.1:0' },
        log: { level: 'info' },
      });
    }
  });

  after(async () => {
    keepAlive.destroy();
    for (const w of workloads) {
      await w.sidecar?.stop();
      await w.app?.close();
    }
    await ca?.stop();
    removeTmp();
  });

  async function start(w: Workload): Promise<void> {
    const sc = await startSidecarProcess(join(tmp, w.name, 'sidecar.yaml'), { timeoutMs: 60_000 });
    w.sidecar = sc;
    await sc.waitForInbound(60_000);
    const out = await sc.waitForLog((l) => l.event === 'outbound_listening', 'the outbound listener');
    w.outboundPort = Number(String(out.address).split(':').pop());
    await sc.waitUntilReady(30_000);
  }

  const chainOf = (w: Workload): Chain => (certificatesIn(currentFiles(w).cert)[1]!.equals(oldIntermediate) ? 'old' : 'new');
  const reloadsOf = (w: Workload): number => w.sidecar!.logs.filter((l) => l.event === 'credentials_reloaded').length;
  const rootsIn = (w: Workload): number => certificatesIn(currentFiles(w).ca).length;

  it('old-chain and new-chain workloads keep talking through the whole rotation; --finish waits for the old leaves', async (t) => {
    const [alpha, beta] = workloads as [Workload, Workload];
    // beta starts well before alpha, so it renews onto the new chain first and alpha stays on the old one
    // for a while: the overlap this test is about.
    await start(beta);
    await sleep(15_000);
    await start(alpha);
    assert.equal(chainOf(alpha), 'old');
    assert.equal(chainOf(beta), 'old');

    const failures: string[] = [];
    const successes = new Map<string, number>(); // "<alpha chain>/<beta chain> <direction>" → count
    const count = (phase: string, d: Direction) => successes.set(`${phase} ${d}`, (successes.get(`${phase} ${d}`) ?? 0) + 1);
    let stopLoad = false;

    const call = async (i: number, d: Direction, phase: string, run: () => Promise<{ status: number; body: string }>, callerId: string) => {
      try {
        const r = await run();
        const echoed = JSON.parse(r.body) as { headers: Record<string, string> };
        if (r.status === 200 && echoed.headers['x-mesh-client-id'] === callerId) count(phase, d);
        else failures.push(`#${i} ${d} (${phase}): ${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        failures.push(`#${i} ${d} (${phase}): ${(err as Error).message}`);
      }
    };
    const direct = (from: Workload, to: Workload, path: string) => {
      const f = currentFiles(from);
      return httpsGet(`https://127.0.0.1:${to.inboundPort}${path}`, { cert: f.cert, key: f.key, ca: f.ca, serverId: to.id }, false);
    };

    const load = (async () => {
      // Bounded: the rotation below ends well within this; stopLoad ends it as soon as it has.
      const deadline = Date.now() + 180_000;
      for (let i = 0; !stopLoad && Date.now() < deadline; i++) {
        const phase = `${chainOf(alpha)}/${chainOf(beta)}`;
        const agent = i % 2 === 0 ? false : keepAlive;
        await call(i, 'alpha→beta outbound', phase, () => httpGet(`http://127.0.0.1:${alpha.outboundPort}/to-beta/${i}`, 10_000, agent), ALPHA);
        await call(i, 'beta→alpha outbound', phase, () => httpGet(`http://127.0.0.1:${beta.outboundPort}/to-alpha/${i}`, 10_000, agent), BETA);
        await call(i, 'alpha→beta direct', phase, () => direct(alpha, beta, `/direct/${i}`), ALPHA);
        await call(i, 'beta→alpha direct', phase, () => direct(beta, alpha, `/direct/${i}`), BETA);
        await sleep(INTERVAL_MS);
      }
    })();

    try {
      await sleep(2_000);
      const reloadsBefore = new Map([alpha, beta].map((w) => [w, reloadsOf(w)]));
      const rotate = await runCli(['ca', 'rotate', '--dir', caDir, '--root', '--activate-in', '0s']);
      assert.equal(rotate.code, 0, rotate.stderr);
      assert.equal(certificatesIn(readFileSync(join(caDir, 'bundle.crt'))).length, 2, 'bundle.crt carries the old and the new root');

      // The agents follow WatchTrustBundle: both workloads trust both roots before either holds a leaf
      // from the new chain.
      await waitFor('both workloads to receive the new bundle', () => (rootsIn(alpha) === 2 && rootsIn(beta) === 2 ? true : undefined), { timeoutMs: 20_000 });
      assert.deepEqual([chainOf(alpha), chainOf(beta)], ['old', 'old'], 'the new bundle arrived before any new-chain leaf');
      // Each sidecar reloads the changed ca.crt (same certificate, new roots) from its watch on identity.dir.
      for (const w of [alpha, beta]) {
        await waitFor(`${w.name}'s sidecar to reload the new ca.crt`, () => (reloadsOf(w) > reloadsBefore.get(w)! ? true : undefined), { timeoutMs: 20_000 });
      }

      // Renewals (every ~40 s for 1-minute certificates) move each workload onto the new chain.
      await waitFor('beta to renew onto the new chain', () => (chainOf(beta) === 'new' ? true : undefined), { timeoutMs: 90_000, intervalMs: 250 });
      await waitFor('alpha to renew onto the new chain', () => (chainOf(alpha) === 'new' ? true : undefined), { timeoutMs: 90_000, intervalMs: 250 });
      await sleep(3_000);
    } finally {
      stopLoad = true;
      await load;
    }

    const total = [...successes.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`${total} requests succeeded, ${failures.length} failed; by alpha/beta chain and direction: ${JSON.stringify([...successes])}`);
    assert.deepEqual(failures, [], `failed requests (of ${total + failures.length})`);
    const directions: Direction[] = ['alpha→beta outbound', 'beta→alpha outbound', 'alpha→beta direct', 'beta→alpha direct'];
    const mixed = (successes.get(`old/new ${directions[0]}`) ?? 0) > 0 ? 'old/new' : 'new/old';
    for (const phase of ['old/old', mixed, 'new/new']) {
      for (const d of directions) {
        assert.ok((successes.get(`${phase} ${d}`) ?? 0) > 0, `no successful ${d} request while alpha/beta were on the ${phase} chains; seen: ${JSON.stringify([...successes])}`);
      }
    }

    // The old chain still has valid leaves (each workload's previous certificate lives up to a minute).
    const finish = await runCli(['ca', 'rotate', '--dir', caDir, '--finish']);
    assert.equal(finish.code, 1, `--finish should be refused: ${finish.stdout}`);
    assert.match(finish.stderr, /issued by the previous chain/);
    assert.match(finish.stderr, /valid until \S+/);
    const safe = /run meshward ca rotate (?:--dir \S+ )?--finish after (\S+) \(in [0-9hms.]+\)/.exec(finish.stderr);
    assert.ok(safe, `the refusal says when --finish will be safe: ${finish.stderr}`);
    assert.equal(certificatesIn(readFileSync(join(caDir, 'bundle.crt'))).length, 2, 'a refused --finish keeps both roots trusted');

    // At the time it named, --finish retires the old root; the agents push the one-root bundle and the
    // workloads (both on the new chain by now) keep talking.
    const safeAt = Date.parse(safe[1]!);
    assert.ok(Number.isFinite(safeAt) && safeAt - Date.now() < 120_000, `--finish after ${safe[1]}`);
    await sleep(Math.max(0, safeAt - Date.now()) + 1_500);
    const finished = await runCli(['ca', 'rotate', '--dir', caDir, '--finish']);
    assert.equal(finished.code, 0, finished.stderr);
    assert.equal(certificatesIn(readFileSync(join(caDir, 'bundle.crt'))).length, 1, 'only the new root is trusted');
    await waitFor('both workloads to drop the old root', () => (rootsIn(alpha) === 1 && rootsIn(beta) === 1 ? true : undefined), { timeoutMs: 20_000 });
    for (let i = 0; i < 10; i++) {
      await call(i, 'alpha→beta outbound', 'finished', () => httpGet(`http://127.0.0.1:${alpha.outboundPort}/after/${i}`, 10_000, i % 2 === 0 ? false : keepAlive), ALPHA);
      await call(i, 'beta→alpha outbound', 'finished', () => httpGet(`http://127.0.0.1:${beta.outboundPort}/after/${i}`, 10_000, i % 2 === 0 ? false : keepAlive), BETA);
      await call(i, 'alpha→beta direct', 'finished', () => direct(alpha, beta, `/after/${i}`), ALPHA);
      await call(i, 'beta→alpha direct', 'finished', () => direct(beta, alpha, `/after/${i}`), BETA);
      await sleep(INTERVAL_MS);
    }
    assert.deepEqual(failures, [], 'failed requests after --finish');
  });
});
