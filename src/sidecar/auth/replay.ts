// Where the sidecar remembers accepted HMAC signatures (auth/replay-cache.ts holds the memory itself). One
// process: a ReplayCache right here. `workers: N`: the cache lives in the cluster primary and every worker
// asks it over the cluster IPC channel, so a captured request replayed to another worker is still a replay.
// A worker that gets no answer in time refuses the request ('full'): better a retry than a replay accepted.
import { ReplayCache, type ReplayOutcome } from '../../auth/replay-cache.js';

/** What the HMAC check needs: remember this signature now, or learn it was seen. */
export interface ReplayStore {
  remember(key: string): ReplayOutcome | Promise<ReplayOutcome>;
}

/** The single-process store. */
export class LocalReplayStore implements ReplayStore {
  readonly cache: ReplayCache;

  constructor(maxSkewMs: number) {
    this.cache = new ReplayCache(maxSkewMs);
  }

  remember(key: string): ReplayOutcome {
    return this.cache.remember(key, Date.now());
  }
}

/** Worker → primary: remember one signature. */
export interface ReplayQuestion {
  type: 'meshward:replay';
  id: number;
  key: string;
}

/** Primary → worker. */
export interface ReplayAnswer {
  type: 'meshward:replay-answer';
  id: number;
  outcome: ReplayOutcome;
}

/** How long a worker waits for the primary before refusing the request. */
export const REPLAY_ANSWER_TIMEOUT_MS = 2_000;

/** A cluster worker's store: every question goes to the primary. */
export class IpcReplayStore implements ReplayStore {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (o: ReplayOutcome) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly send: (msg: ReplayQuestion) => void) {}

  remember(key: string): Promise<ReplayOutcome> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve('full');
      }, REPLAY_ANSWER_TIMEOUT_MS);
      this.waiting.set(id, { resolve, timer });
      this.send({ type: 'meshward:replay', id, key });
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
