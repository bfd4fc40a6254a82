// Where the sidecar remembers accepted HMAC signatures (auth/replay-cache.ts holds the memory itself). One
// process: a ReplayCache right here. `workers: N`: the cache lives in the cluster primary and every worker
// asks it over the cluster IPC channel, so a captured request replayed to another worker is still a replay.
// A worker that gets no answer in time refuses the request ('full'): better a retry than a replay accepted.
// Each signature is kept until its `created` + maxSkew (the verdict carries the `created` that was verified).
import { ReplayCache, type ReplayOutcome } from '../../auth/replay-cache.js';

/** What the HMAC check needs: remember this signature now, or learn it was seen. */
export interface ReplayStore {
  /** `createdS`: the signature's `created` (unix seconds); undefined keeps it for the longest any signature needs. */
  remember(key: string, createdS?: number): ReplayOutcome | Promise<ReplayOutcome>;
}

/**
 * Entries are kept this much longer than created + maxSkew. A wall clock stepped back by up to this much
 * forgets nothing still acceptable; in the primary, it also covers the time from a worker's check to the
 * primary reading its own clock (a worker waits at most REPLAY_ANSWER_TIMEOUT_MS, then refuses anyway).
 */
export const LOCAL_REPLAY_GRACE_MS = 1_000;

/** The single-process store; also the cluster primary's (with a longer grace). */
export class LocalReplayStore implements ReplayStore {
  readonly cache: ReplayCache;

  constructor(maxSkewMs: number, graceMs = LOCAL_REPLAY_GRACE_MS) {
    this.cache = new ReplayCache(maxSkewMs, { graceMs });
  }

  remember(key: string, createdS?: number): ReplayOutcome {
    return this.cache.remember(key, Date.now(), createdS);
  }
}

/** Worker → primary: remember one signature. */
export interface ReplayQuestion {
  type: 'meshward:replay';
  id: number;
  key: string;
  /** The signature's `created` (unix seconds), when known. */
  created?: number;
}

/** Primary → worker. */
export interface ReplayAnswer {
  type: 'meshward:replay-answer';
  id: number;
  outcome: ReplayOutcome;
}

/** How long a worker waits for the primary before refusing the request. */
export const REPLAY_ANSWER_TIMEOUT_MS = 2_000;

/** The grace of the primary's store: a worker's question may arrive up to its timeout after the check. */
export const PRIMARY_REPLAY_GRACE_MS = REPLAY_ANSWER_TIMEOUT_MS + LOCAL_REPLAY_GRACE_MS;

/** A cluster worker's store: every question goes to the primary. */
export class IpcReplayStore implements ReplayStore {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (o: ReplayOutcome) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly send: (msg: ReplayQuestion) => void) {}

  remember(key: string, createdS?: number): Promise<ReplayOutcome> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve('full');
      }, REPLAY_ANSWER_TIMEOUT_MS);
      this.waiting.set(id, { resolve, timer });
      this.send(createdS === undefined ? { type: 'meshward:replay', id, key } : { type: 'meshward:replay', id, key, created: createdS });
    });
  }

  /** Called with every message from the primary; true when it was a replay answer. */
  onMessage(msg: unknown): boolean {
    if (!isReplayAnswer(msg)) return false;
    const w = this.waiting.get(msg.id);
    if (w === undefined) return true; // answered after the timeout: the request was refused already
    this.waiting.delete(msg.id);
    clearTimeout(w.timer);
    w.resolve(msg.outcome);
    return true;
  }
}

function isReplayAnswer(msg: unknown): msg is ReplayAnswer {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'meshward:replay-answer';
}
