// Prometheus metrics of one sidecar (src/metrics/). One Registry per sidecar so tests and embedders can
// run several in one process; the names below are the contract dashboards and alerts rely on.
// `aggregator` says how the cluster primary (workers > 1, see workers/cluster.ts) combines the workers' values:
// counters and histograms add up, so do open connections; the certificate expiry is the earliest any
// worker serves, the one an alert must see.
import { Counter, Gauge, Histogram } from '../../metrics/metric.js';
import type { CounterChild } from '../../metrics/metric.js';
import { Registry } from '../../metrics/registry.js';
import { registerProcessMetrics } from '../../metrics/process.js';
import { DEFAULT_IDENTITY_LABELS, IdentityLabels } from './identity-labels.js';

/** Buckets (seconds) of meshward_request_duration_seconds, as docs/metrics.md lists them. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets (seconds) of meshward_outbound_request_duration_seconds. */
const OUTBOUND_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'decision' | 'route' | 'identity'>;
  readonly requestDuration: Histogram<'decision'>;
  readonly handshakeFailures: Counter<'reason'>;
  readonly openConnections: Gauge;
  readonly connectionsEnded: Counter<'reason'>;
  readonly outboundRequests: Counter<'upstream'>;
  readonly outboundFailures: Counter<'upstream' | 'reason'>;
  readonly outboundDuration: Histogram<'upstream'>;
  readonly reloads: Counter<'kind' | 'result'>;
  readonly certificateNotAfter: Gauge;
  readonly certificateExpiry: Gauge<'certificate'>;
  /** Which identities have their own `identity` label value (the rest are `other`). */
  readonly identities: IdentityLabels;
  /** The meshward_requests_total series of each identity label value, to remove them when it is evicted. */
  private readonly requestSeries = new Map<string, Map<string, CounterChild>>();
  readonly crlNextUpdate: Gauge;
  readonly credentials: Counter<'kind' | 'result' | 'reason'>;

  constructor(opts: { processMetrics?: boolean; identityLabels?: number } = {}) {
    const r = this.registry;
    this.requests = r.register(new Counter({
      name: 'meshward_requests_total',
      help: 'Requests (and tcp:// connections) by policy decision, deciding rule and client identity.',
      labelNames: ['decision', 'route', 'identity'],
    }));
    this.requestDuration = r.register(new Histogram({
      name: 'meshward_request_duration_seconds',
      help: 'Time from request headers to the end of the response, by decision.',
      labelNames: ['decision'],
      buckets: REQUEST_BUCKETS,
    }));
    this.handshakeFailures = r.register(new Counter({
      name: 'meshward_handshake_failures_total',
      help: 'Inbound TLS handshakes refused, by reason (no_certificate, expired, untrusted, revoked, ...).',
      labelNames: ['reason'],
    }));
    this.openConnections = r.register(new Gauge({
      name: 'meshward_open_connections',
      help: 'Inbound connections currently open.',
      aggregator: 'sum',
    }));
    this.connectionsEnded = r.register(new Counter({
      name: 'meshward_connections_ended_total',
      help: 'Open inbound connections the sidecar ended because the peer certificate was revoked, expired or is no longer trusted, or because they reached limits.maxConnectionAge (reason: revoked, expired, untrusted, max_age).',
      labelNames: ['reason'],
    }));
    this.outboundRequests = r.register(new Counter({
      name: 'meshward_outbound_requests_total',
      help: 'Requests (and tcp connections) the app sent through an outbound listener, by upstream (host:port as configured).',
      labelNames: ['upstream'],
    }));
    this.outboundFailures = r.register(new Counter({
      name: 'meshward_outbound_failures_total',
      help: 'Outbound requests that failed before or while the upstream answered, by upstream and reason (connect_refused, connect_timeout, idle_timeout, identity_mismatch, tls_refused, no_credentials, upstream_error).',
      labelNames: ['upstream', 'reason'],
    }));
    this.outboundDuration = r.register(new Histogram({
      name: 'meshward_outbound_request_duration_seconds',
      help: 'Time from the app\'s outbound request to the end of the answer, by upstream.',
      labelNames: ['upstream'],
      buckets: OUTBOUND_BUCKETS,
    }));
    this.reloads = r.register(new Counter({
      name: 'meshward_reloads_total',
      help: 'Credential and policy reloads by result; a failure keeps the previous version.',
      labelNames: ['kind', 'result'],
    }));
    const notAfter = (this.certificateNotAfter = r.register(new Gauge({
      name: 'meshward_certificate_not_after_seconds',
      help: "Expiry of the sidecar's own leaf certificate, in Unix seconds.",
      aggregator: 'min',
    })));
    const expiry: Gauge<'certificate'> = (this.certificateExpiry = r.register(new Gauge<'certificate'>({
      name: 'meshward_certificate_expiry_seconds',
      help: "Seconds until a certificate the sidecar relies on expires (negative once it has), computed at each scrape; certificate=\"serving\": its own leaf.",
      labelNames: ['certificate'],
      aggregator: 'min',
      // Derived from the not-after gauge when scraped. Labelled so that it has no sample at all until
      // credentials are loaded (an unlabelled gauge would read 0, "expires now", and fire every alert).
      collect() {
        const v = notAfter.get() ?? 0;
        if (v <= 0) expiry.clear();
        else expiry.labels({ certificate: 'serving' }).set(v - Math.floor(Date.now() / 1000));
      },
    })));
    this.identities = new IdentityLabels(opts.identityLabels ?? DEFAULT_IDENTITY_LABELS, (id) => this.forgetIdentity(id));
    this.crlNextUpdate = r.register(new Gauge({
      name: 'meshward_crl_next_update_timestamp_seconds',
      help: 'The earliest nextUpdate of the CRLs in force (crl.pem), in Unix seconds; absent without a CRL. Past it the CRL is stale but still enforced.',
      aggregator: 'min',
    }));
    this.crlNextUpdate.clear(); // absent until a CRL is in force: a 0 would read as a CRL stale since 1970
    this.credentials = r.register(new Counter({
      name: 'meshward_credential_checks_total',
      help: 'API credentials checked on routes with require, by kind (apikey, hmac, jwt), result (accepted, refused) and reason (ok or a refusal reason).',
      labelNames: ['kind', 'result', 'reason'],
    }));
    if (opts.processMetrics !== false) registerProcessMetrics(r);
  }

  /**
   * The meshward_requests_total child for a decision, rule and caller: the caller's identity label is
   * bounded (`identities`), so the child may count under `other`. Counts one request toward the ranking.
   */
  requestCounter(decision: string, route: string, identity: string): CounterChild {
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
