// Prometheus metrics of one `meshward ca serve` process (src/metrics/, one Registry per server so tests and
// embedders can run several in a process). docs/metrics.md lists every series; dashboards and alerts rely
// on these names. Counters move where the decision is made (the Sign handler, the readiness probe, the
// store's background errors); the CRL gauges are read from the store when /metrics is scraped, so they
// show what every replica serves, whoever wrote it.
import { Counter, Gauge, Histogram } from '../../metrics/metric.js';
import { Registry } from '../../metrics/registry.js';
import { registerProcessMetrics } from '../../metrics/process.js';
import * as grpc from '@grpc/grpc-js';
import type { CaStore } from '../store/store.js';
import type { AuthMethod } from './sign.js';

/** Where a store error was seen: a Sign call, the /readyz probe, a scrape, or the pool in the background. */
export type StoreErrorOperation = 'sign' | 'readiness' | 'metrics' | 'background';

/** How long a scrape waits for the current CRL before serving the last value it read. */
const CRL_READ_TIMEOUT_MS = 2_000;

/** Resolves like `promise`, or rejects with `message` after `ms` (the promise itself is left to finish). */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class CaMetrics {
  readonly registry = new Registry();
  private readonly signs: Counter<'method' | 'result' | 'code'>;
  private readonly signDuration: Histogram<'result'>;
  private readonly tokens: Counter<'result'>;
  private readonly storeErrors: Counter<'operation'>;
  private store: CaStore | undefined;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    this.signs = r.register(new Counter({
      name: 'meshward_ca_sign_requests_total',
      help: 'Sign calls by credential method, result (issued or refused) and gRPC status code.',
      labelNames: ['method', 'result', 'code'],
    }));
    this.signDuration = r.register(new Histogram({
      name: 'meshward_ca_sign_duration_seconds',
      help: 'Time the CA spent on a Sign call, from the request to the answer, by result.',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }));
    this.tokens = r.register(new Counter({
      name: 'meshward_ca_bootstrap_tokens_total',
      help: 'One-time bootstrap tokens presented to Sign: redeemed (a certificate was issued) or refused (unknown, used, expired or malformed).',
      labelNames: ['result'],
    }));
    this.storeErrors = r.register(new Counter({
      name: 'meshward_ca_store_errors_total',
      help: "Failures of the CA's store (database unreachable, locked, timed out), by where they were seen.",
      labelNames: ['operation'],
    }));
    // The CRL every replica serves, read at scrape time (one read shared by both gauges: a registry
    // collects its metrics concurrently); while the store is unreachable the last value read stays.
    let crl = { number: 0, nextUpdate: 0 };
    let reading: Promise<void> | undefined;
    const readCrl = (): Promise<void> => (reading ??= (async () => {
      try {
        if (!this.store) return;
        const current = await withTimeout(this.store.currentCrl(), CRL_READ_TIMEOUT_MS, `the store did not answer within ${CRL_READ_TIMEOUT_MS} ms`);
        if (current) crl = { number: Number(current.crlNumber), nextUpdate: Math.floor(current.nextUpdate.getTime() / 1000) };
      } catch {
        this.storeErrors.labels({ operation: 'metrics' }).inc();
      } finally {
        reading = undefined;
      }
    })());
    const crlNumber: Gauge = r.register(new Gauge({
      name: 'meshward_ca_crl_number',
      help: 'The highest CRL number of the current CRL in the store (0 until one is read).',
      async collect() {
        await readCrl();
        crlNumber.set(crl.number);
      },
    }));
    const crlNextUpdate: Gauge = r.register(new Gauge({
      name: 'meshward_ca_crl_next_update_seconds',
      help: 'nextUpdate of the current CRL in the store, in Unix seconds: sidecars refuse new credentials once it has passed.',
      async collect() {
        await readCrl();
        crlNextUpdate.set(crl.nextUpdate);
      },
    }));
    if (opts.processMetrics !== false) registerProcessMetrics(r);
  }

  /** The store whose current CRL the CRL gauges report (set once the server has opened it). */
  follow(store: CaStore): void {
    this.store = store;
  }

  /** One Sign call answered with `code` (grpc.status.OK when a certificate was issued). */
  observeSign(method: AuthMethod, code: grpc.status, seconds: number, identified: boolean): void {
    const result = code === grpc.status.OK ? 'issued' : 'refused';
    this.signs.labels({ method, result, code: grpc.status[code] }).inc();
    this.signDuration.labels({ result }).observe(seconds);
    // A bootstrap token is consumed only together with its certificate (one transaction): redeemed means
    // issued; refused means the token itself was turned away, before any identity was known.
    if (method === 'token' && result === 'issued') this.tokens.labels({ result: 'redeemed' }).inc();
    else if (method === 'token' && !identified && code === grpc.status.UNAUTHENTICATED) this.tokens.labels({ result: 'refused' }).inc();
  }

  storeError(operation: StoreErrorOperation): void {
    this.storeErrors.labels({ operation }).inc();
  }
}
