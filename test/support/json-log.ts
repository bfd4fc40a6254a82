// Reads the JSON log a meshward process writes (one object per line) as it comes, for tests that wait for
// an event ("admin_listening", "reload", ...) and then read fields of that line. A line that is not JSON
// (a stack trace, a warning from node) is kept as {level: 0, msg: line} so nothing is lost.
import type { Readable } from 'node:stream';

export interface LogLine {
  level: number;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

export class JsonLog {
  readonly lines: LogLine[] = [];
  private buffered = '';
  private readonly listeners = new Set<() => void>();

  constructor(stream: Readable) {
    stream.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.lines.push(parseLine(line));
        this.changed();
      }
    });
  }

  /** Calls `listener` after every new line (and on changed()); returns the function that removes it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells the listeners to look again (the process exited, say). */
  changed(): void {
    for (const l of [...this.listeners]) l();
  }
}

function parseLine(line: string): LogLine {
  try {
    const v = JSON.parse(line) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as LogLine;
  } catch {
    // not JSON: kept as text below
  }
  return { level: 0, msg: line };
}
