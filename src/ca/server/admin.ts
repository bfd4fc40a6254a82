// The CA's admin HTTP listener (`meshward ca serve --admin HOST:PORT`): /healthz (the process is alive),
// /readyz (200 while the store answers a cheap read within READINESS_TIMEOUT_MS; 503 with the store's own
// sentence while it does not, so Kubernetes stops routing Sign calls to a replica that cannot record
// certificates) and /metrics (Prometheus text, ./metrics.ts). The HTTP shell is the sidecar's AdminServer;
// only what readiness means differs. Plain HTTP without authentication: bind it to loopback or a pod address.
import type { AddressInfo } from 'node:net';
import { AdminServer, type Readiness } from '../../sidecar/observe/admin.js';
import { MeshwardError } from '../../errors.js';
import type { CaStore } from '../store/store.js';
import { withTimeout, type CaMetrics } from './metrics.js';
import { parseListen } from './server.js';

/** How long /readyz waits for the store (a kubelet probe's default timeout is 1 s; PostgreSQL's connect timeout is 5 s). */
export const READINESS_TIMEOUT_MS = 900;

/** Parses --admin: HOST:PORT with a usage error naming the flag. */
export function parseAdminListen(text: string): { host: string; port: number } {
  return parseListen(text, '--admin');
}

export class CaAdmin {
  private constructor(private readonly server: AdminServer, readonly address: AddressInfo) {}

  static async start(listen: string, store: CaStore, metrics: CaMetrics): Promise<CaAdmin> {
    const server = new AdminServer(parseAdminListen(listen), metrics.registry, () => CaAdmin.readiness(store, metrics));
    const address = await server.listen().catch((err: NodeJS.ErrnoException) => {
      throw new MeshwardError('unavailable', `cannot listen on --admin ${listen}: ${err.code ?? err.message}`);
    });
    return new CaAdmin(server, address);
  }

  /** Ready when a one-row read of the store comes back in time; the store's sentence (never a password) when not. */
  static async readiness(store: CaStore, metrics: CaMetrics): Promise<Readiness> {
    try {
      await withTimeout(store.counter('ca_generation'), READINESS_TIMEOUT_MS, `the store ${store.description} did not answer within ${READINESS_TIMEOUT_MS} ms`);
      return { ready: true };
    } catch (err) {
      metrics.storeError('readiness');
      return { ready: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
