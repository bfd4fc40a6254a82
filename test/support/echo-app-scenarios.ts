// For test files that run sidecars in front of one echo HTTP app: the app is started before the file's
// tests and closed after them, with every scenario made through `scenario()` cleaned up; `statusOf`
// sends one GET through a (keep-alive) https Agent and gives the status.
import { after, before } from 'node:test';
import { Agent, request } from 'node:https';
import { makeScenario, startEchoHttpApp, startSidecarProcess } from './sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from './sidecar.js';

export function echoAppScenarios(): { app: () => EchoHttpApp; scenario: (opts?: Omit<Parameters<typeof makeScenario>[0], 'app'>) => Scenario } {
  let app: EchoHttpApp | undefined;
  const made: Scenario[] = [];
  before(async () => {
    app = await startEchoHttpApp();
  });
  after(async () => {
    await app?.close();
    for (const s of made) s.cleanup();
  });
  return {
    app: () => app!,
    scenario(opts = {}) {
      const s = makeScenario({ ...opts, app: app!.url });
      made.push(s);
      return s;
    },
  };
}

/**
 * A sidecar in front of the echo app that logs every allowed request at info (the audit trail under test),
 * listening and ready. The test stops it; a failed start leaves nothing running.
 */
export async function startLoggingSidecar(apps: ReturnType<typeof echoAppScenarios>): Promise<{ scenario: Scenario; sidecar: SidecarProcess; port: number }> {
  const scenario = apps.scenario({ config: { log: { level: 'info', allowed: 'info' } } });
  const sidecar = await startSidecarProcess(scenario.configPath);
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    return { scenario, sidecar, port };
  } catch (err) {
    await sidecar.stop('SIGKILL');
    throw err;
  }
}

export function statusOf(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, servername: 'localhost', timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}
