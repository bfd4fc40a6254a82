// The sidecar's JSON logger (pino). One place decides the shape of log lines and where they go.
//
// Lines are buffered and written asynchronously (a sonic-boom destination with a minimum write size),
// so logging every allowed request costs a string append per line and one write(2) per few dozen lines
// instead of a synchronous write per line. What is buffered is written: every 250 ms, when the buffer
// passes its minimum, at the end of the event-loop turn that logged any other line than a request's, by `flushLogs()` (awaited before a drained sidecar exits, SIGTERM and SIGINT
// included: it also waits for a write in flight) and, for any other way out, synchronously on process
// 'exit' (pino's own hook for asynchronous destinations).
//
// No redaction pass: pino's `redact` walks every line's object, which the allowed-request line pays for
// on each request. Key material is kept out by construction instead: callers log only fields they build
// (identities, addresses, reasons, file paths), never a credential object or PEM text.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Bytes gathered before a write; a line is about 250 bytes, so about 30 lines per write(2) under load. */
const MIN_WRITE_BYTES = 8 * 1024;
/** The line written for every allowed request: the one line that waits in the buffer. */
const BUFFERED_EVENT = 'request';
/** The longest a line waits in the buffer when few are logged. */
const FLUSH_INTERVAL_MS = 250;

/** A JSON-lines logger writing to `fd` (stdout unless given), buffered as described above. */
export function createLogger(level: LogLevel = 'info', fd = 1): Logger {
  const dest = pino.destination({ fd, sync: false, minLength: MIN_WRITE_BYTES, periodicFlush: FLUSH_INTERVAL_MS });
  // pino registers this destination for a synchronous flush on process 'exit' (on-exit-leak-free) and
  // stops writing on EPIPE; any other write error must not end the process as an unhandled 'error'.
  dest.on('error', (err: Error) => {
    process.stderr.write(`meshward: writing log lines failed: ${err.message}\n`);
  });
  // Only the per-request lines (event: request) wait for the buffer to fill: any other line (start,
  // reloads, denials, errors) is rare, and is written at the end of the current event-loop turn, with
  // whatever request lines are buffered before it, so nobody waits for a lifecycle line.
  let flushScheduled = false;
  const flushSoon = () => {
    flushScheduled = false;
    dest.flush();
  };
  return pino(
    {
      level,
      base: { component: 'meshward-sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method) {
          method.apply(this, args);
          if (!flushScheduled && (args[0] as { event?: unknown } | undefined)?.event !== BUFFERED_EVENT) {
            flushScheduled = true;
            setImmediate(flushSoon);
          }
        },
      },
    },
    dest as DestinationStream,
  );
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
