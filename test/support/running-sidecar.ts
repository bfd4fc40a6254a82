// A sidecar with its app, for a whole test file: `const rig = runningSidecar('tcp')` registers before/after
// hooks that start an app (the HTTP echo app or the TCP echo app), write a scenario (test PKI, identity
// dir, policy, config) in front of it, start the real `meshward sidecar` process and wait until it serves;
// and stop all of it afterwards. The variations between files are options, not copies of the set-up.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { TestLeaf } from './pki-fixtures.js';
import { freePort } from './ports.js';
import { makeScenario, startEchoHttpApp, startSidecarProcess, startTcpEchoApp } from './sidecar.js';
import type { EchoHttpApp, Scenario, ScenarioOptions, SidecarProcess, TcpEchoApp } from './sidecar.js';

export interface RunningSidecar<App = EchoHttpApp | TcpEchoApp> {
  app: App;
  scenario: Scenario;
  sidecar: SidecarProcess;
  /** The inbound listener's port (undefined with `ready: false` until the test waited for it). */
  port: number;
  /** Closes the app (its port then refuses connections). */
  stopApp(): Promise<void>;
}

export interface RunningSidecarOptions extends Omit<ScenarioOptions, 'app'> {
  /** A crl.pem revoking nothing (for both CAs) in identity.dir before the sidecar starts. */
  crl?: boolean;
  /** Runs once the scenario is written, before the sidecar starts (to add a crl.pem, say). */
  prepare?(scenario: Scenario): void;
  /** ulimit -n for the sidecar process. */
  maxOpenFiles?: number;
  /** Variables added to the sidecar's environment. */
  env?: Record<string, string>;
  /** The signal `after` stops the sidecar with (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** `workers: N` on an inbound port chosen up front (a re-forked worker must get the same one). */
  workers?: number | string;
  /** false: only start the process; the test waits for the listener and /readyz itself. */
  ready?: boolean;
}

/**
 * Registers before/after hooks running a sidecar child process in front of the echo app (`http`) or the
 * TCP echo app (`tcp`). The returned object is filled in by the time the tests run.
 */
export function runningSidecar(kind: 'http', opts?: RunningSidecarOptions): RunningSidecar<EchoHttpApp>;
export function runningSidecar(kind: 'tcp', opts?: RunningSidecarOptions): RunningSidecar<TcpEchoApp>;
export function runningSidecar(kind: 'http' | 'tcp', opts: RunningSidecarOptions = {}): RunningSidecar {
  const { crl, prepare, maxOpenFiles, env, stopSignal, workers, ready, ...scenarioOpts } = opts;
  let closeApp: (() => Promise<void>) | undefined;
  const running = {
    stopApp: async () => {
      const close = closeApp;
      closeApp = undefined;
      await close?.();
    },
  } as RunningSidecar;
  before(async () => {
    const app = kind === 'http' ? await startEchoHttpApp() : await startTcpEchoApp();
    running.app = app;
    closeApp = app.close;
    const url = kind === 'http' ? (app as EchoHttpApp).url : `tcp://127.0.0.1:${app.port}`;
    let config = scenarioOpts.config;
    if (workers !== undefined) {
      running.port = await freePort();
      config = { ...config, inbound: { listen: `127.0.0.1:${running.port}`, app: url }, workers };
    }
    running.scenario = makeScenario({ ...scenarioOpts, app: url, ...(config ? { config } : {}) });
    if (crl) writeFileSync(join(running.scenario.identityDir, 'crl.pem'), crlRevoking(running.scenario, []));
    prepare?.(running.scenario);
    running.sidecar = await startSidecarProcess(running.scenario.configPath, { ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }), ...(env ? { env } : {}) });
    if (ready === false) return;
    if (workers !== undefined) {
      await running.sidecar.waitUntilReady(30_000);
    } else {
      running.port = await running.sidecar.waitForInbound();
      await running.sidecar.waitUntilReady();
    }
  });
  after(async () => {
    await running.sidecar?.stop(stopSignal);
    await closeApp?.();
    running.scenario?.cleanup();
  });
  return running;
}

let crlNumber = 10n;

/** crl.pem for both CAs of the scenario, the intermediate's listing `revoked`; each call numbers its CRLs higher. */
export function crlRevoking(scenario: Scenario, revoked: TestLeaf[]): string {
  crlNumber++;
  return scenario.pki.crlFor(scenario.pki.root, [], { crlNumber }) + scenario.pki.crlFor(scenario.pki.intermediate, revoked, { crlNumber });
}
