// The cluster primary of `workers: N` (N > 1). It serves no traffic: it forks N workers (worker.ts,
// each an ordinary Sidecar sharing the inbound and outbound ports through node:cluster), serves the one
// admin listener (readiness = every worker ready, asked over IPC; metrics = every worker's Registry
// summed by src/metrics/aggregate.ts), re-forks a worker that dies (with backoff), and on SIGTERM has every worker drain.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge } from '../../metrics/metric.js';
import { Registry } from '../../metrics/registry.js';
import { aggregate } from '../../metrics/aggregate.js';
import { exposition } from '../../metrics/exposition.js';
import { MeshwardError } from '../../errors.js';
import { AdminServer } from '../observe/admin.js';
import type { Readiness } from '../observe/admin.js';
import { formatHostPort } from '../config.js';
import type { SidecarConfig } from '../config.js';
import { WORKER_SLOT_ENV, isFromWorker } from './worker.js';
import { LocalReplayStore, PRIMARY_REPLAY_GRACE_MS } from '../auth/replay.js';
import { DEFAULT_MAX_SKEW_MS } from '../../auth/http-signature.js';
import type { FromWorker, ToWorker, WorkerMetrics } from './worker.js';

/** A kubelet readiness probe times out after 1 s by default: a later answer would be useless anyway. */
const READINESS_TIMEOUT_MS = 1_000;
/** Prometheus scrapes time out after 10 s by default; a worker slower than this is left out of one scrape. */
const METRICS_TIMEOUT_MS = 3_000;
/** Beyond limits.drainTimeout, time for a worker to close its watchers and exit before it is killed. */
const DRAIN_MARGIN_MS = 5_000;
const KILL_WAIT_MS = 5_000;
const RESTART_BASE_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long was not crash-looping: its next exit restarts after the base delay. */
const STABLE_AFTER_MS = 30_000;

/** Delay before re-forking after the n-th consecutive unexpected exit (1 s, 2 s, 4 s … capped at 30 s). */
export function restartDelayMs(consecutiveExits: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, consecutiveExits - 1));
}

/** One of the N places a worker occupies; its number survives re-forks (slot 1 runs the agent). */
interface Slot {
  n: number;
  worker?: Worker;
  pid?: number;
  /** The worker answers IPC (its message handler is installed). */
  online: boolean;
  forkedAt: number;
  consecutiveExits: number;
  restartTimer?: NodeJS.Timeout;
  lastExit?: string;
  /** The counters and histograms of this slot's current worker at its last answered scrape. */
  lastMonotonic?: WorkerMetrics;
  exited?: Promise<void>;
}

interface Pending {
  slot: Slot;
  resolve: (msg: FromWorker) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class SidecarCluster {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  /** The primary's own series; the workers' are added to them at scrape time. */
  readonly registry = new Registry();
  adminAddress?: AddressInfo;
  /** Resolves when shutdown() has finished. */
  readonly done: Promise<void>;
  private finished!: () => void;
  private readonly configText: string;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private admin?: AdminServer;
  private stopping?: Promise<void>;
  private stopReason = 'shutting down';
  /** Settled by the first worker start outcome that decides start(): all started, or one failed. */
  private initial?: { waiting: Set<number>; resolve: () => void; reject: (err: Error) => void };
  private readonly restarts: Counter<'worker'>;
  /**
   * Counters and histograms of workers that exited, as of their last scrape. They stay in every later
   * sum: a replacement worker starts from 0, and a summed counter that went down would read as a
   * counter reset to Prometheus (rate() would count the whole remaining total as new).
   */
  private retired: WorkerMetrics[] = [];
  /** Folding an exited worker into `retired` is asynchronous; a scrape waits for it. */
  private retiring: Promise<void> = Promise.resolve();

  /** Accepted HMAC signatures of every worker (a replay must not pass by landing on another worker). */
  private readonly replay: LocalReplayStore;

  constructor(config: SidecarConfig, configText: string, logger: Logger) {
    this.config = config;
    this.replay = new LocalReplayStore(config.credentials?.hmac.maxSkewMs ?? DEFAULT_MAX_SKEW_MS, PRIMARY_REPLAY_GRACE_MS);
    this.configText = configText;
    this.logger = logger;
    this.done = new Promise((resolve) => (this.finished = resolve));
    const slots = this.slots;
    const workers: Gauge = this.registry.register(new Gauge({
      name: 'meshward_workers',
      help: 'Worker processes alive and answering the primary (workers > 1).',
      collect() {
        workers.set(slots.filter((s) => s.online).length);
      },
    }));
    this.restarts = this.registry.register(new Counter({
      name: 'meshward_worker_restarts_total',
      help: 'Workers re-forked after an unexpected exit, by worker number.',
      labelNames: ['worker'],
    }));
  }

  /** Starts the admin server, forks every worker and resolves once all have started. */
  async start(): Promise<void> {
    const { config, logger } = this;
    // Round-robin (node's default on Linux) accepts every connection in the primary and hands its file
    // descriptor to a worker over IPC: an extra hop, and primary CPU, per connection. With SCHED_NONE
    // the workers accept from the shared socket themselves; the issue author measured more full
    // handshakes per second that way on this 2-core machine. The price: the kernel may spread a light
    // load unevenly. A user who sets NODE_CLUSTER_SCHED_POLICY keeps their choice.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    this.admin = new AdminServer(config.admin, { contentType: this.registry.contentType, metrics: () => this.metricsText() }, (now) => this.readiness(now));
    try {
      this.adminAddress = await this.admin.listen();
    } catch (err) {
      throw new MeshwardError('unavailable', `admin.listen ${formatHostPort(config.admin)}: ${(err as Error).message}`);
    }
    logger.info({ event: 'admin_listening', address: formatHostPort({ host: this.adminAddress.address, port: this.adminAddress.port }) }, 'admin server listening');
    if (this.stopping) return; // a signal arrived while the admin server was starting
    const scheduling = cluster.schedulingPolicy === cluster.SCHED_NONE ? 'none' : 'rr';
    logger.info({ event: 'workers_starting', workers: config.workers, scheduling }, `starting ${config.workers} workers`);

    const started = new Promise<void>((resolve, reject) => {
      this.initial = { waiting: new Set(), resolve, reject };
    });
    for (let n = 1; n <= config.workers; n++) {
      const slot: Slot = { n, online: false, forkedAt: 0, consecutiveExits: 0 };
      this.slots.push(slot);
      this.initial!.waiting.add(n);
      this.fork(slot);
    }
    try {
      await started;
    } catch (err) {
      await this.shutdown('a worker failed to start');
      throw err;
    } finally {
      this.initial = undefined;
    }
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.n) });
    slot.worker = worker;
    slot.pid = worker.process.pid;
    slot.online = false;
    slot.forkedAt = Date.now();
    slot.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (msg: unknown) => {
      if (isFromWorker(msg)) this.onMessage(slot, worker, msg);
    });
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(slot, worker, code, signal));
    // An IPC send to a worker that just died reports here; its exit is handled by 'exit'.
    worker.on('error', (err: Error) => this.logger.debug({ event: 'worker_ipc_error', worker: slot.n, error: err.message }, 'worker IPC error'));
    this.logger.info({ event: 'worker_forked', worker: slot.n, pid: slot.pid }, `worker ${slot.n} forked (pid ${slot.pid})`);
  }

  private onMessage(slot: Slot, worker: Worker, msg: FromWorker): void {
    if (slot.worker !== worker) return;
    switch (msg.type) {
      case 'meshward:hello':
        // A worker forked before a shutdown began has already been signalled; it gets nothing to start with.
        if (this.stopping) worker.process.kill('SIGTERM');
        else worker.send({ type: 'meshward:config', text: this.configText } satisfies ToWorker, undefined, () => undefined);
        break;
      case 'meshward:online':
        slot.online = true;
        // Forked before a shutdown began and told to stop by signal, or just now: its drain handler exists now.
        if (this.stopping) worker.send({ type: 'meshward:drain', reason: this.stopReason } satisfies ToWorker, undefined, () => undefined);
        break;
      case 'meshward:started':
        this.logger.info({ event: 'worker_started', worker: slot.n, pid: slot.pid }, `worker ${slot.n} started (pid ${slot.pid})`);
        this.initial?.waiting.delete(slot.n);
        if (this.initial?.waiting.size === 0) this.initial.resolve();
        break;
      case 'meshward:start-failed':
        this.logger.error({ event: 'worker_start_failed', worker: slot.n, pid: slot.pid, error: msg.message }, `worker ${slot.n} failed to start: ${msg.message}`);
        // At start the worker's error is the sidecar's error (a bad policy file is still exit 2).
        this.initial?.reject(new MeshwardError(msg.code, msg.message));
        break;
      case 'meshward:replay':
        // The one replay cache of every worker (auth/replay.ts): answered at once, in the primary's time.
        worker.send({ type: 'meshward:replay-answer', id: msg.id, outcome: this.replay.remember(msg.key, msg.created) } satisfies ToWorker, undefined, () => undefined);
        break;
      case 'meshward:answer': {
        const p = this.pending.get(msg.id);
        if (!p) return; // answered after its timeout
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        p.resolve(msg);
        break;
      }
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.worker !== worker) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    slot.worker = undefined;
    slot.online = false;
    slot.lastExit = how;
    for (const [id, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error(`worker ${slot.n} (pid ${slot.pid}) exited (${how})`));
    }
    if (this.stopping) {
      this.logger.info({ event: 'worker_exited', worker: slot.n, pid: slot.pid, code, signal }, `worker ${slot.n} exited (${how})`);
      return;
    }
    if (this.initial) {
      this.initial.reject(new MeshwardError('unavailable', `worker ${slot.n} exited during start (${how}); see its log lines above`));
      return;
    }
    this.retire(slot);
    if (Date.now() - slot.forkedAt >= STABLE_AFTER_MS) slot.consecutiveExits = 0;
    slot.consecutiveExits++;
    const delay = restartDelayMs(slot.consecutiveExits);
    this.restarts.labels({ worker: String(slot.n) }).inc();
    this.logger.warn(
      { event: 'worker_exited', worker: slot.n, pid: slot.pid, code, signal, restartInMs: delay },
      `worker ${slot.n} (pid ${slot.pid}) exited unexpectedly (${how}); forking a new one in ${delay} ms`,
    );
    slot.restartTimer = setTimeout(() => this.fork(slot), delay);
  }

  /** Sends `msg` to the slot's worker and resolves with its answer, or rejects after timeoutMs. */
  private ask(slot: Slot, msg: { what: 'readiness'; now: number } | { what: 'metrics' }, timeoutMs: number): Promise<FromWorker> {
    const worker = slot.worker;
    return new Promise((resolve, reject) => {
      if (!worker?.isConnected()) {
        reject(new Error(`worker ${slot.n} is not running`));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${slot.n} (pid ${slot.pid}) did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { slot, resolve, reject, timer });
      worker.send({ type: 'meshward:ask', id, ...msg } satisfies ToWorker, undefined, (err) => {
        if (!err || !this.pending.delete(id)) return;
        clearTimeout(timer);
        reject(new Error(`worker ${slot.n} (pid ${slot.pid}) cannot be asked: ${err.message}`));
      });
    });
  }

  /** Ready only when every worker is alive and says it is ready; otherwise the reason names the worker. */
  async readiness(now: Date): Promise<Readiness> {
    if (this.stopping) return { ready: false, reason: 'draining: shutting down' };
    const absent = this.slots.filter((s) => !s.online);
    if (absent.length > 0) {
      const s = absent[0]!;
      const why = s.restartTimer ? `is restarting after it exited (${s.lastExit})` : 'is starting';
      return { ready: false, reason: `${this.slots.length - absent.length} of ${this.slots.length} workers alive: worker ${s.n} ${why}` };
    }
    const details = new Set<string>(); // the same line from every worker is said once
    const problems = await Promise.all(
      this.slots.map((s) =>
        this.ask(s, { what: 'readiness', now: now.getTime() }, READINESS_TIMEOUT_MS).then(
          (msg) => {
            const r = 'readiness' in msg ? msg.readiness : { ready: false as const, reason: 'answered something else' };
            for (const d of r.detail ?? []) details.add(d);
            return r.ready ? undefined : `worker ${s.n}: ${r.reason}`;
          },
          (err: Error) => err.message,
        ),
      ),
    );
    const problem = problems.find((p) => p !== undefined);
    const detail = details.size > 0 ? { detail: [...details] } : {};
    if (problem !== undefined) return { ready: false, reason: problem, ...detail };
    return { ready: true, ...detail };
  }

  /**
   * Every live worker's metrics plus the primary's, combined by each metric's aggregator (metrics.ts),
   * plus the counters of workers that exited. A worker that does not answer fails the whole scrape (500):
   * a gap in the series is honest, a sum without that worker would look like a counter reset.
   */
  async metricsText(): Promise<string> {
    await this.retiring;
    const live = this.slots.filter((s) => s.online);
    const answers = await Promise.all(
      live.map(async (s) => {
        let msg: FromWorker;
        try {
          msg = await this.ask(s, { what: 'metrics' }, METRICS_TIMEOUT_MS);
          if (!('metrics' in msg)) throw new Error(`worker ${s.n} answered something else`);
        } catch (err) {
          const message = (err as Error).message;
          this.logger.warn({ event: 'worker_metrics_missing', worker: s.n, error: message }, `metrics scrape failed: ${message}`);
          throw err;
        }
        s.lastMonotonic = monotonicOnly(msg.metrics);
        return withoutUnsetExpiry(msg.metrics);
      }),
    );
    const all: WorkerMetrics[] = [...answers, ...this.retired, await this.registry.snapshot()];
    return exposition(aggregate(all));
  }

  /** Keeps an exited worker's counters in the sums (see `retired`), folded into one entry. */
  private retire(slot: Slot): void {
    const last = slot.lastMonotonic;
    slot.lastMonotonic = undefined;
    if (last === undefined) return;
    this.retiring = this.retiring.then(() => {
      this.retired = [aggregate([...this.retired, last])];
    });
  }

  /** Has every worker drain (up to limits.drainTimeout), kills stragglers, closes the admin server. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= this.drainAndClose(reason);
    return this.stopping;
  }

  private async drainAndClose(reason: string): Promise<void> {
    const timeoutMs = this.config.limits.drainTimeoutMs;
    const running = this.slots.filter((s) => s.worker);
    this.logger.info({ event: 'draining', reason, workers: running.length, timeoutMs }, `draining ${running.length} workers: ${reason}`);
    for (const s of this.slots) if (s.restartTimer) clearTimeout(s.restartTimer);
    // Stopped while still starting (SIGTERM at start): start() is done, there is nothing left to wait for.
    this.initial?.resolve();
    this.stopReason = reason;
    for (const s of running) {
      // A worker that is not online yet has no message handler (IPC messages before it are dropped): a
      // signal either kills it before its handlers exist (it never served) or reaches its drain handler.
      if (s.online) s.worker!.send({ type: 'meshward:drain', reason } satisfies ToWorker, undefined, () => undefined);
      else s.worker!.process.kill('SIGTERM');
    }
    const allExited = () => Promise.all(running.map((s) => s.exited));
    if (!(await within(allExited(), timeoutMs + DRAIN_MARGIN_MS))) {
      for (const s of running) {
        if (!s.worker) continue;
        this.logger.warn({ event: 'worker_killed', worker: s.n, pid: s.pid }, `worker ${s.n} (pid ${s.pid}) did not finish draining in time; killing it`);
        s.worker.process.kill('SIGKILL');
      }
      await within(allExited(), KILL_WAIT_MS);
    }
    await this.admin?.close();
    this.logger.info({ event: 'stopped' }, 'sidecar stopped');
    this.finished();
  }
}

/** True if `p` settled within ms. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counters and histograms only: what must keep adding up after a worker is gone (gauges describe the present). */
function monotonicOnly(metrics: WorkerMetrics): WorkerMetrics {
  return metrics.filter((m) => m.type === 'counter' || m.type === 'histogram');
}

/**
 * A worker that has not loaded credentials yet reports its expiry gauge as 0 (a single process shows that
 * 0, docs/metrics.md); under the `min` aggregator that 0 would win and fire every expiry alert.
 */
function withoutUnsetExpiry(metrics: WorkerMetrics): WorkerMetrics {
  return metrics.map((m) =>
    m.name === 'meshward_certificate_not_after_seconds' ? { ...m, series: m.series.filter((v) => v.value !== 0) } : m,
  );
}
