// Prometheus metrics of one sidecar (prom-client). One Registry per sidecar so tests and embedders can
// run several in one process; the names below are the contract dashboards and alerts rely on.
// `aggregator` says how the cluster primary (workers > 1, see workers/cluster.ts) combines the workers' values:
// counters and histograms add up (prom-client's default), so do open connections; the certificate
// expiry is the earliest any worker serves, the one an alert must see.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class SidecarMetrics {
  readonly registry: Registry;
  requests: Counter<'decision' | 'route' | 'identity'>;
  requestDuration: Histogram<'decision'>;
  handshakeFailures: Counter<'reason'>;
  openConnections: Gauge;
  reloads: Counter<'kind' | 'result'>;
  certificateNotAfter: Gauge;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    this.requests = new Counter({
      name: 'meshward_requests_total',
      help: 'Requests (and tcp:// connections) by policy decision, deciding rule and client identity.',
      labelNames: ['decision', 'route', 'identity'],
      registers: [registry],
    });
    this.requestDuration = new Histogram({
      name: 'meshward_request_duration_seconds',
      help: 'Time from request headers to the end of the response, by decision.',
      labelNames: ['decision'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.handshakeFailures = new Counter({
      name: 'meshward_handshake_failures_total',
      help: 'Inbound TLS handshakes refused, by reason (no_certificate, expired, untrusted, revoked, ...).',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.openConnections = new Gauge({
      name: 'meshward_open_connections',
      help: 'Inbound connections currently open.',
      aggregator: 'sum',
      registers: [registry],
    });
    this.reloads = new Counter({
      name: 'meshward_reloads_total',
      help: 'Credential and policy reloads by result; a failure keeps the previous version.',
      labelNames: ['kind', 'result'],
      registers: [registry],
    });
    this.certificateNotAfter = new Gauge({
      name: 'meshward_certificate_not_after_seconds',
      help: "Expiry of the sidecar's own leaf certificate, in Unix seconds.",
      aggregator: 'min',
      registers: [registry],
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  }
}
