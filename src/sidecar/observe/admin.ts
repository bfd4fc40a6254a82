// The admin HTTP server: /healthz (the process is alive), /readyz (503 with a JSON reason until
// credentials are loaded and listeners are up, and again when the leaf has expired or we are draining),
// /metrics (Prometheus text). Readiness is computed at request time, so an expiry needs no timer.
// Both sources are passed in: a single sidecar answers from its own state and Registry, a cluster
// primary (workers/cluster.ts) by asking its workers over IPC, hence the promises.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../config.js';

/** `detail`: conditions worth a look that do not make the sidecar unready (e.g. a CRL past its nextUpdate). */
export type Readiness = { ready: true; detail?: string[] } | { ready: false; reason: string; detail?: string[] };

/** What /metrics serves: a Registry (src/metrics/) fits, as does a cluster aggregation. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export class AdminServer {
  readonly server: Server;
  private readonly listenOn: HostPort;

  constructor(listen: HostPort, metrics: MetricsSource, readiness: (now: Date) => Readiness | Promise<Readiness>) {
    this.listenOn = listen;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":"method not allowed"}\n');
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}\n');
      } else if (path === '/readyz') {
        Promise.resolve(readiness(new Date())).then(
          (r) => res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(r)}\n`),
          (err: Error) => res.writeHead(503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ready: false, reason: err.message })}\n`),
        );
      } else if (path === '/metrics') {
        metrics.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
        );
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: try /healthz, /readyz or /metrics"}\n');
      }
    });
    this.server.keepAliveTimeout = 5_000;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.listenOn.port, this.listenOn.host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
