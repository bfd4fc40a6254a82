// A sidecar process in front of a TCP echo app whose identity.dir (Kubernetes ..data layout) holds a
// crl.pem chosen by the test, and callers to probe it: the set-up of the stale/broken CRL scenarios.
import type { TestLeaf } from './pki-fixtures.js';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, presentedSerial, serverLeaf, startSidecarProcess, startTcpEchoApp, tcpRoundTrip, writeKubernetesIdentity, type Scenario, type SidecarProcess, type TcpEchoApp } from './sidecar.js';
import { waitFor } from './poll.js';

export interface CrlSidecar {
  scenario: Scenario;
  sidecar: SidecarProcess;
  port: number;
  /** A frontend caller that the test's CRLs list as revoked. */
  revokedLeaf: TestLeaf;
  /** Whether `leaf` gets its bytes echoed or is refused. */
  call(leaf: TestLeaf): Promise<'echoed' | 'refused'>;
  /** A new server certificate beside `crlPem`, swapped in like Kubernetes; resolves once the sidecar presents it. */
  rotate(crlPem: string): Promise<TestLeaf>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  readyz(): Promise<{ status: number; body: { ready: boolean; reason?: string; detail?: string[] } }>;
  close(): Promise<void>;
}

/** Starts the sidecar with `crlPem(pki, revokedLeaf)` in identity.dir and waits until it is ready. */
export async function startCrlSidecar(crlPem: (s: Scenario, revoked: TestLeaf) => string): Promise<CrlSidecar> {
  const app: TcpEchoApp = await startTcpEchoApp();
  const scenario = makeScenario({ app: `tcp://127.0.0.1:${app.port}`, writeIdentity: false });
  const revokedLeaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  writeKubernetesIdentity(scenario.identityDir, scenario.server, scenario.pki, crlPem(scenario, revokedLeaf));
  const sidecar = await startSidecarProcess(scenario.configPath);
  const port = await sidecar.waitForInbound();
  await sidecar.waitUntilReady();
  const metric = async (name: string, labels: Record<string, string> = {}) => metricValue(await sidecar.metrics(), name, labels);
  return {
    scenario, sidecar, port, revokedLeaf, metric,
    call: async (leaf) => (await tcpRoundTrip(clientTlsOptions(scenario.pki, leaf, port), 'ping')).result,
    async rotate(pem) {
      const leaf = serverLeaf(scenario.pki);
      writeKubernetesIdentity(scenario.identityDir, leaf, scenario.pki, pem);
      await waitFor('the sidecar to present the new certificate', async () =>
        ((await presentedSerial(clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port))) === leaf.cert.serialHex ? true : undefined), { timeoutMs: 30_000 });
      return leaf;
    },
    readyz: () => sidecar.readyz() as ReturnType<CrlSidecar['readyz']>,
    async close() {
      await sidecar.stop();
      await app.close();
      scenario.cleanup();
    },
  };
}
