// Prometheus metrics of one sidecar (prom-client). One Registry per sidecar so tests and embedders can
// run several in one process; the names below are the contract dashboards and alerts rely on.
// `aggregator` says how the cluster primary (workers > 1, see workers/cluster.ts) combines the workers' values:
// counters and histograms add up (prom-client's default), so do open connections; the certificate
// expiry is the earliest any worker serves, the one an alert must see.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEFAULT_IDENTITY_LABELS, IdentityLabels } from './identity-labels.js';

interface Inc {
  inc(): void;
}

export class SidecarMetrics {
  readonly registry: Registry;
  requests: Counter<'decision' | 'route' | 'identity'>;
  requestDuration: Histogram<'decision'>;
  handshakeFailures: Counter<'reason'>;
  openConnections: Gauge;
  connectionsEnded: Counter<'reason'>;
  outboundRequests: Counter<'upstream'>;
  outboundFailures: Counter<'upstream' | 'reason'>;
  outboundDuration: Histogram<'upstream'>;
  reloads: Counter<'kind' | 'result'>;
  certificateNotAfter: Gauge;
  certificateExpiry: Gauge<'certificate'>;
  /** Which identities have their own `identity` label value (the rest are `other`). */
  readonly identities: IdentityLabels;
  /** The meshward_requests_total series of each identity label value, to remove them when it is evicted. */
  private readonly requestSeries = new Map<string, Map<string, Inc>>();
  crlNextUpdate: Gauge;
  credentials: Counter<'kind' | 'result' | 'reason'>;
  /**
   * Runs before meshward_credential_checks_total is read: the authenticator counts verdicts in plain numbers
   * on the request path and adds them here (prom-client's labelled inc() cost about as much as an API key check).
   */
  beforeCredentialsScrape: (() => void) | undefined;

  constructor(opts: { processMetrics?: boolean; identityLabels?: number } = {}) {
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
    this.connectionsEnded = new Counter({
      name: 'meshward_connections_ended_total',
      help: 'Open inbound connections the sidecar ended because the peer certificate was revoked, expired or is no longer trusted, or because they reached limits.maxConnectionAge (reason: revoked, expired, untrusted, max_age).',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.outboundRequests = new Counter({
      name: 'meshward_outbound_requests_total',
      help: 'Requests (and tcp connections) the app sent through an outbound listener, by upstream (host:port as configured).',
      labelNames: ['upstream'],
      registers: [registry],
    });
    this.outboundFailures = new Counter({
      name: 'meshward_outbound_failures_total',
      help: 'Outbound requests that failed before or while the upstream answered, by upstream and reason (connect_refused, connect_timeout, idle_timeout, identity_mismatch, tls_refused, no_credentials, upstream_error).',
      labelNames: ['upstream', 'reason'],
      registers: [registry],
    });
    this.outboundDuration = new Histogram({
      name: 'meshward_outbound_request_duration_seconds',
      help: 'Time from the app\'s outbound request to the end of the answer, by upstream.',
      labelNames: ['upstream'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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
    const notAfter = this.certificateNotAfter;
    this.certificateExpiry = new Gauge({
      name: 'meshward_certificate_expiry_seconds',
      help: "Seconds until a certificate the sidecar relies on expires (negative once it has), computed at each scrape; certificate=\"serving\": its own leaf.",
      labelNames: ['certificate'],
      aggregator: 'min',
      registers: [registry],
      // Derived from the not-after gauge when scraped. Labelled so that it has no sample at all until
      // credentials are loaded (an unlabelled gauge would read 0, "expires now", and fire every alert).
      async collect() {
        const v = (await notAfter.get()).values[0]?.value ?? 0;
        if (v <= 0) this.reset();
        else this.set({ certificate: 'serving' }, v - Math.floor(Date.now() / 1000));
      },
    });
    this.identities = new IdentityLabels(opts.identityLabels ?? DEFAULT_IDENTITY_LABELS, (id) => this.forgetIdentity(id));
    this.crlNextUpdate = new Gauge({
      name: 'meshward_crl_next_update_timestamp_seconds',
      help: 'The earliest nextUpdate of the CRLs in force (crl.pem), in Unix seconds; absent without a CRL. Past it the CRL is stale but still enforced.',
      aggregator: 'min',
      registers: [registry],
    });
    const flushCredentials = () => this.beforeCredentialsScrape?.();
    this.credentials = new Counter({
      name: 'meshward_credential_checks_total',
      help: 'API credentials checked on routes with require, by kind (apikey, hmac, jwt), result (accepted, refused) and reason (ok or a refusal reason).',
      labelNames: ['kind', 'result', 'reason'],
      registers: [registry],
      collect: flushCredentials,
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  }

  /**
   * The meshward_requests_total child for a decision, rule and caller: the caller's identity label is
   * bounded (`identities`), so the child may count under `other`. Counts one request toward the ranking.
   */
  requestCounter(decision: string, route: string, identity: string): Inc {
    const label = this.identities.label(identity);
    let series = this.requestSeries.get(label);
    if (series === undefined) {
      series = new Map();
      this.requestSeries.set(label, series);
    }
    const key = `${decision}\n${route}`;
    let c = series.get(key);
    if (c === undefined) {
      c = this.requests.labels({ decision, route, identity: label });
      series.set(key, c);
    }
    return c;
  }

  /** An evicted identity's series leave /metrics (its later requests count under `other`). */
  private forgetIdentity(identity: string): void {
    const series = this.requestSeries.get(identity);
    if (series === undefined) return;
    for (const key of series.keys()) {
      const [decision, route] = key.split('\n') as [string, string];
      this.requests.remove({ decision, route, identity });
    }
    this.requestSeries.delete(identity);
  }
}
