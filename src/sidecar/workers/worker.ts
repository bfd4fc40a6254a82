// One cluster worker of `workers: N` (N > 1): runs the ordinary Sidecar without an admin listener and
// talks to the primary (cluster.ts) over the cluster IPC channel: it asks for its configuration, and
// answers for its readiness and metrics and to "drain".
// Everything else (credentials and policy reload, draining) is the Sidecar's own behaviour, per process.
import type { MetricSnapshot } from '../../metrics/snapshot.js';
import { isMeshwardError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import type { Readiness } from '../observe/admin.js';
import { parseSidecarConfigText } from '../config.js';
import { createLogger, flushLogs } from '../observe/log.js';
import { IpcReplayStore, type ReplayAnswer, type ReplayQuestion } from '../auth/replay.js';

/** Environment the primary forks each worker with. */
export const WORKER_SLOT_ENV = 'MESHWARD_WORKER_SLOT';

/** One worker registry's snapshot (plain data: it crosses the IPC channel as JSON), what the primary sums. */
export type WorkerMetrics = MetricSnapshot[];

/** Primary → worker. */
export type ToWorker =
  | { type: 'meshward:config'; text: string }
  | { type: 'meshward:ask'; id: number; what: 'readiness'; now: number }
  | { type: 'meshward:ask'; id: number; what: 'metrics' }
  | { type: 'meshward:drain'; reason: string }
  | ReplayAnswer;

/** Worker → primary. */
export type FromWorker =
  | { type: 'meshward:hello' }
  | { type: 'meshward:online' }
  | { type: 'meshward:started' }
  | { type: 'meshward:start-failed'; code: ErrorCode | 'internal'; message: string }
  | { type: 'meshward:answer'; id: number; readiness: Readiness }
  | { type: 'meshward:answer'; id: number; metrics: WorkerMetrics }
  | ReplayQuestion;

export function isFromWorker(msg: unknown): msg is FromWorker {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string' && (msg as { type: string }).type.startsWith('meshward:');
}

/** Resolves once the message is handed to the channel (so exiting right after does not lose it). */
function send(msg: FromWorker): Promise<void> {
  // Errors (ERR_IPC_CHANNEL_CLOSED) are dropped: if the primary is gone, node:cluster exits this worker
  // on 'disconnect' anyway.
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(msg, undefined, {}, () => resolve());
  });
}

/** True when this process was forked by the sidecar's cluster primary. */
export function isSidecarWorker(): boolean {
  return process.env[WORKER_SLOT_ENV] !== undefined && process.send !== undefined;
}

/**
 * Runs this process as worker `slot` until it has drained, then exits. `configPath` anchors relative
 * paths; the text itself comes from the primary, so every worker runs what the primary validated.
 */
export async function runWorker(configPath: string): Promise<never> {
  const slot = Number(process.env[WORKER_SLOT_ENV]);
  const config = parseSidecarConfigText(await configFromPrimary(), configPath);
  // The renewal agent writes identity.dir for everyone (atomically, ..data swap); the other workers
  // pick its result up through their own watchers. Two agents would each keep their own key.
  if (slot !== 1) delete config.identity.provision;
  const logger = createLogger(config.log.level).child({ worker: slot, pid: process.pid });
  // Imported here, not at the top: the primary imports this module for the protocol above and must not
  // load (and hold in memory) the whole sidecar it never runs.
  const { Sidecar } = await import('../sidecar.js');
  // HMAC signatures are remembered in the primary, so a replay is caught whichever worker it lands on.
  const replay = new IpcReplayStore((msg) => void send(msg));
  const sidecar = new Sidecar(config, logger, { admin: false, replay });

  process.on('message', (msg: ToWorker) => {
    if (replay.onMessage(msg)) return;
    if (msg?.type === 'meshward:ask' && msg.what === 'readiness') {
      void send({ type: 'meshward:answer', id: msg.id, readiness: sidecar.readiness(new Date(msg.now)) });
    } else if (msg?.type === 'meshward:ask' && msg.what === 'metrics') {
      void sidecar.metrics.registry.snapshot().then((metrics) => send({ type: 'meshward:answer', id: msg.id, metrics }));
    } else if (msg?.type === 'meshward:drain') {
      void sidecar.shutdown(msg.reason);
    }
  });
  // Ctrl-C reaches every process of the group; SIGTERM sent to one worker drains just that one (the
  // primary then forks a replacement).
  const onSignal = (signal: NodeJS.Signals) => void sidecar.shutdown(`received ${signal}`);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  void send({ type: 'meshward:online' });

  try {
    await sidecar.start();
    void send({ type: 'meshward:started' });
  } catch (err) {
    await sidecar.shutdown('start failed');
    const message = err instanceof Error ? err.message : String(err);
    await send({ type: 'meshward:start-failed', code: isMeshwardError(err) ? err.code : 'internal', message });
    await flushLogs(logger);
    process.exit(1);
  }
  await sidecar.done;
  await flushLogs(logger);
  process.exit(Number(process.exitCode ?? 0));
}

/**
 * The configuration text the primary validated, asked for over IPC. Not through the environment: an
 * inline bootstrap token would stay readable in /proc/<pid>/environ for the worker's whole life, and one
 * environment variable holds at most 128 KiB. If the primary goes away first, node:cluster ends this
 * worker on 'disconnect'.
 */
function configFromPrimary(): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (msg: ToWorker) => {
      if (msg?.type !== 'meshward:config') return;
      process.off('message', onMessage);
      resolve(msg.text);
    };
    process.on('message', onMessage);
    void send({ type: 'meshward:hello' });
  });
}
