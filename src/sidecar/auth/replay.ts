// Where the sidecar remembers accepted HMAC signatures (auth/replay-cache.ts holds the memory itself). One
// process: a ReplayCache right here. `workers: N`: the cache lives in the cluster primary and every worker
// asks it over the cluster IPC channel, so a captured request replayed to another worker is still a replay.
// A worker that gets no answer in time refuses the request ('full'): better a retry than a replay accepted.
// Each signature is kept until its `created` + maxSkew (signatureCreated() reads `created` back).
import { ReplayCache, type ReplayOutcome } from '../../auth/replay-cache.js';
import { headerValues, type AuthRequest } from '../../auth/verdict.js';

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

// The one shape clients send (what signRequest and the docs' curl recipe write): `label=("c1" "c2" ...)`
// then `;key=value` parameters, strings without escapes or integers, no optional whitespace. For text of this
// shape the RFC 8941 parser the verifier uses (which refuses repeated parameters) finds exactly these
// parameters, so the `created` read here is the one that was verified.
const PLAIN_SIGNATURE_INPUT = /^[a-z*][a-z0-9_\-.*]*=\((?:"[^"\\]*"(?: "[^"\\]*")*)?\)((?:;[a-z*][a-z0-9_\-.*]*=(?:"[^"\\]*"|-?[0-9]{1,15}))*)$/;
/** One parameter of that list (sticky: walked from its start, so a `;created=` inside a string is never one). */
const PARAM = /;([a-z*][a-z0-9_\-.*]*)=("[^"\\]*"|-?[0-9]{1,15})/y;

/**
 * The `created` of a request whose HMAC signature was just accepted, read back from Signature-Input
 * (src/auth/http-signature.ts does not hand it out), or undefined for any other shape: the cache then keeps
 * the signature for 2·maxSkew, always enough. Only for verified requests: a refused one never gets here.
 */
export function signatureCreated(req: AuthRequest): number | undefined {
  const lines = headerValues(req.headers, 'signature-input');
  if (lines.length !== 1) return undefined;
  const m = PLAIN_SIGNATURE_INPUT.exec(lines[0]!);
  if (m === null) return undefined;
  return createdParam(m[1]!);
}

/** The `created` integer among plain `;key=value` parameters (the shape PLAIN_SIGNATURE_INPUT matched). */
function createdParam(params: string): number | undefined {
  PARAM.lastIndex = 0;
  for (let m = PARAM.exec(params); m !== null; m = PARAM.exec(params)) {
    if (m[1] === 'created') return m[2]!.startsWith('"') ? undefined : Number(m[2]);
  }
  return undefined;
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
