// The sidecar's JSON logger (pino). One place decides the shape of log lines; nothing here ever
// receives key material, and callers log identities, addresses and reasons, never PEM.
import { pino } from 'pino';
import type { Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** A logger writing JSON lines to stdout (synchronously, so the last lines before exit are kept). */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { component: 'meshward-sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: if a caller ever passes an object holding a key, it is not written.
      redact: { paths: ['key', '*.key', 'privateKey', '*.privateKey'], censor: '[redacted]' },
    },
    pino.destination({ fd: 1, sync: true }),
  );
}
