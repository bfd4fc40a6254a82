// The sidecar's JSON logger (pino), also `meshward ca serve`'s (with the CA's own shape: LoggerShape). One
// place decides the shape of log lines and where they go.
//
// Every line goes to one LineBuffer (line-buffer.ts): buffered, written asynchronously in chunks, in the
// order logged. The line of every allowed request is not built by pino but by request-log.ts, in pino's
// exact format, into the same buffer (it is the one line per request, and pino's generic serialization
// was most of its cost); every other line (start, reloads, denials, errors) is pino's, and is written at
// the end of the event-loop turn that logged it, with whatever request lines are buffered before it, so
// nobody waits for a lifecycle line. `flushLogs()` is awaited before a drained sidecar exits (SIGTERM and
// SIGINT included: it waits for a write in flight too); any other exit writes the buffer synchronously.
//
// No redaction pass: pino's `redact` walks every line's object, which the allowed-request line paid for
// on each request. Key material is kept out by construction instead: callers log only fields they build
// (identities, addresses, reasons, file paths), never a credential object or PEM text.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { LineBuffer } from './line-buffer.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * What starts every line after the level: the time (ISO string or pino's default, epoch ms) and the component;
 * and which of pino's lines wait for the next chunk (250 ms at the latest, like the sidecar's request lines):
 * those whose `event` is in `chunkedEvents` (`ca serve`'s per-Sign audit lines). Every other line is written
 * at the end of the event-loop turn that logged it, so a reader of a lifecycle line (`listening`,
 * `crl_written`) does not wait for a chunk to fill.
 */
export interface LoggerShape {
  component: string;
  isoTime: boolean;
  chunkedEvents: ReadonlySet<string>;
}

/** The sidecar's lines (its request lines are request-log.ts's, always chunked). */
const SIDECAR: LoggerShape = { component: 'meshward-sidecar', isoTime: true, chunkedEvents: new Set() };

/** The LineBuffer behind each destination createLogger made (pino children share their parent's). */
const buffers = new WeakMap<object, LineBuffer>();

/** A JSON-lines logger writing to `fd` (stdout unless given), buffered as described above. */
export function createLogger(level: LogLevel = 'info', fd = 1, shape: LoggerShape = SIDECAR): Logger {
  const out = new LineBuffer(fd, {
    droppedLine: (count) =>
      `{"level":40,"time":${shape.isoTime ? `"${new Date().toISOString()}"` : Date.now()},"component":${JSON.stringify(shape.component)},"event":"log_lines_dropped","count":${count},"msg":"log lines dropped: stdout did not keep up"}\n`,
  });
  // pino calls logMethod and then, synchronously, the destination's write with the line built: the flag
  // carries the call's event to the write.
  let chunked = false;
  const dest = {
    write: (line: string) => (chunked ? out.write(line) : out.writeSoon(line)),
    flush: (cb: () => void) => void out.flush().then(cb),
  };
  buffers.set(dest, out);
  const base = { component: shape.component };
  const hooks = {
    logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void): void {
      const first: unknown = args[0];
      chunked = typeof first === 'object' && first !== null && shape.chunkedEvents.has((first as { event?: string }).event ?? '');
      method.apply(this, args);
    },
  };
  const timestamp = shape.isoTime ? pino.stdTimeFunctions.isoTime : undefined;
  return pino({ level, base, hooks, ...(timestamp && { timestamp }) }, dest as DestinationStream);
}

/** The buffer `logger` (or the logger it is a child of) writes to, when createLogger made it. */
export function lineBufferOf(logger: Logger): LineBuffer | undefined {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return typeof stream === 'object' && stream !== null ? buffers.get(stream) : undefined;
}

/** Writes every buffered line (of this logger's destination); resolves once they reached the file descriptor. */
export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}
