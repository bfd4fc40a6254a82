// The line logged for every allowed request (event: request), built by hand in pino's exact format —
// {"level":30,"time":"<ISO>",<the logger's bindings>,"identity":…,"remote":…,"event":"request","method":…,
// "path":…,"rule":…,"status":…,"outcome":…,"ms":…[,"principal":…,"keyId":…],"msg":"request"} — and
// appended to the logger's LineBuffer, so it keeps its place among pino's lines.
//
// It is the one line per request, so what can be prepared is: the connection part (identity, remote
// address) is serialized once per connection (connectionPart(), kept on the gate's Peer), the level,
// time and bindings once per millisecond, a rule name or method once per distinct value. JSON.stringify
// runs per line only on what the client chooses (the path) and on the principal/key id of routes with
// `require`; numbers and the outcome word need no escaping.
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { LineBuffer } from './line-buffer.js';
import { lineBufferOf } from './log.js';

/** Distinct rule names or methods remembered as JSON text; more are serialized per line. */
const MAX_CACHED = 256;

export class RequestLog {
  /** '{"level":N,"time":"' — the same for every line. */
  private readonly opening: string;
  /** '"' + the logger's bindings (',"component":"meshward-sidecar"…'). */
  private readonly bindings: string;
  private lastMs = -1;
  private lastHead = '';
  private readonly texts = new Map<string, string>();

  constructor(private readonly out: LineBuffer, level: number, bindings: string) {
    this.opening = `{"level":${level},"time":"`;
    this.bindings = `"${bindings}`;
  }

  /** The connection's part of each of its lines: serialized once, on its first logged request. */
  connectionPart(identity: string, remote: string): string {
    return `,"identity":${JSON.stringify(identity)},"remote":${JSON.stringify(remote)}`;
  }

  /** Appends the line of one allowed request (`principal`, `keyId`: routes with `require`). */
  write(connection: string, method: string, path: string, rule: string, status: number, outcome: string, ms: number, principal?: string, keyId?: string): void {
    const now = Date.now();
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastHead = this.opening + new Date(now).toISOString() + this.bindings;
    }
    let line = `${this.lastHead}${connection},"event":"request","method":${this.text(method)},"path":${JSON.stringify(path)},"rule":${this.text(rule)},"status":${status},"outcome":"${outcome}","ms":${ms}`;
    if (principal !== undefined) {
      line += `,"principal":${JSON.stringify(principal)}`;
      if (keyId !== undefined) line += `,"keyId":${JSON.stringify(keyId)}`;
    }
    this.out.write(`${line},"msg":"request"}\n`);
  }

  /** A string that repeats (rule name, method) as JSON text. */
  private text(s: string): string {
    let t = this.texts.get(s);
    if (t === undefined) {
      t = JSON.stringify(s);
      if (this.texts.size < MAX_CACHED) this.texts.set(s, t);
    }
    return t;
  }
}

/**
 * The request log writing through `logger`'s buffer at `level` with its bindings, or undefined when the
 * logger was not made by createLogger (then the caller logs through pino itself).
 */
export function requestLogFor(logger: Logger, level: 'info' | 'debug'): RequestLog | undefined {
  const out = lineBufferOf(logger);
  if (out === undefined) return undefined;
  const bindings = (logger as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym];
  return new RequestLog(out, logger.levels.values[level]!, typeof bindings === 'string' ? bindings : '');
}
