// Where the sidecar's log lines go: one ordered buffer in front of a file descriptor (stdout), written
// asynchronously in chunks. Every line of the process (pino's and the hand-built allowed-request lines of
// request-log.ts) goes through the same buffer, so lines keep the order they were logged in.
//
// Why not pino's destination (sonic-boom): with a minimum write size it computes Buffer.byteLength of its
// whole pending buffer on every write, which at 8–16 KiB was most of the cost of an allowed-request line
// (measured about 6.8 µs per line). Here a line is one string append; its byte length is never needed,
// because the threshold is counted in UTF-16 units (lines are mostly ASCII, the exact size of a write does
// not matter) and the chunk is converted to bytes once, when it is written.
//
// What is buffered is written: once a chunk's worth gathered (16 KiB, 4 KiB to a pipe, socket or
// terminal, so a write fits what the reader drains and pipe writes stay small), 250 ms after the first
// line of a chunk at the latest, at the end of the event-loop turn after a line written with
// writeSoon() (lifecycle lines, denials: nobody waits for them), by flush() (awaited before a drained
// sidecar exits on SIGTERM/SIGINT: it waits for the write in flight too) and, synchronously, on process
// 'exit' for any other way out. A non-blocking descriptor (stdout as a pipe) answering EAGAIN is retried.
// Like sonic-boom, the 'exit' write cannot wait for a chunk already handed to the thread pool: the lines
// logged after it are written, that chunk completes on its own.
//
// A write that fails for good (EPIPE, EBADF: the reader is gone) stops the writing. Any other failure (ENOSPC,
// EIO, EFBIG) drops that chunk and the next chunks are tried as usual, since the disk may get space again.
// It is said on stderr without flooding it: one line for the first failure, then at most one line per
// interval (10 s) with the count of lines lost meanwhile, and one line when a write succeeds again.
import fs from 'node:fs';

/** Characters gathered before a write to a regular file. */
const FILE_CHUNK = 16 * 1024;
/** ... and to a pipe, socket or terminal. */
const PIPE_CHUNK = 4 * 1024;
/** The longest a line waits in the buffer when few are logged. */
const FLUSH_INTERVAL_MS = 250;
/** Characters held while the descriptor does not keep up; lines beyond are dropped and counted. */
const MAX_PENDING = 16 * 1024 * 1024;
/** Wait before retrying a write the descriptor refused with EAGAIN (a full pipe). */
const EAGAIN_RETRY_MS = 5;
/** How long the synchronous exit write keeps retrying EAGAIN before giving up. */
const EXIT_WRITE_PATIENCE_MS = 5_000;
/** While writes keep failing, at most one stderr line per this interval. */
const FAILURE_REPORT_INTERVAL_MS = 10_000;

export interface LineBufferOptions {
  /** Characters per write; by default from what `fd` is (16 KiB file, 4 KiB pipe/socket/terminal). */
  chunk?: number;
  /** Where the lines about failed writes go (each ends in '\n'). Default: stderr. */
  report?: (line: string) => void;
  /** While writes keep failing, at most one report per this many ms (default 10 s). */
  reportIntervalMs?: number;
  /** The line (with its newline) that says `count` lines were dropped because the descriptor did not keep up. */
  droppedLine?: (count: number) => string;
}

export class LineBuffer {
  readonly chunk: number;
  private pending = '';
  /** A chunk handed to fs.write and not fully written yet. */
  private inFlight = false;
  /** Write whatever is pending when the write in flight completes, even below a chunk. */
  private flushWanted = false;
  private soonScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private dropped = 0;
  /** The descriptor is gone (EPIPE, EBADF): lines are discarded from then on. */
  private broken = false;
  private readonly report: (line: string) => void;
  private readonly reportIntervalMs: number;
  /** Writes are failing: since when (ms), lines lost since the last report and in all, the last error. */
  private failing: { since: number; lastReport: number; unreported: number; lost: number; error: string } | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private readonly droppedLine: ((count: number) => string) | undefined;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flushNow();
  };
  private readonly onSoon = (): void => {
    this.soonScheduled = false;
    this.flushNow();
  };

  constructor(readonly fd: number, opts: LineBufferOptions = {}) {
    this.chunk = opts.chunk ?? chunkFor(fd);
    this.report = opts.report ?? ((line) => {
      try {
        process.stderr.write(line);
      } catch {
        // stderr is gone too: nothing left to tell
      }
    });
    this.reportIntervalMs = opts.reportIntervalMs ?? FAILURE_REPORT_INTERVAL_MS;
    this.droppedLine = opts.droppedLine;
    process.on('exit', () => {
      this.flushSync();
      this.reportNow(); // the count a pending report timer would have given
    });
  }

  /** Appends one line (ending in '\n'); it is written with the next chunk. */
  write(line: string): void {
    if (this.broken) return;
    if (this.pending.length > MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending += line;
    if (this.inFlight) return;
    if (this.pending.length >= this.chunk) this.startWrite();
    else this.armTimer();
  }

  /** The 250 ms bound for what is pending (lines that arrived during a write included). */
  private armTimer(): void {
    if (this.timer === undefined) {
      this.timer = setTimeout(this.onTimer, FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Appends a line and writes it, with everything before it, at the end of this event-loop turn. */
  writeSoon(line: string): void {
    this.write(line);
    if (!this.soonScheduled && !this.broken) {
      this.soonScheduled = true;
      setImmediate(this.onSoon);
    }
  }

  /** Writes everything buffered; resolves once it reached the descriptor (or cannot). */
  flush(): Promise<void> {
    if (!this.inFlight && this.pending === '') return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.flushNow();
    });
  }

  /** Writes everything buffered now, synchronously (process 'exit'). */
  flushSync(): void {
    if (this.broken || (this.pending === '' && this.dropped === 0)) return;
    const buf = this.take();
    let off = 0;
    const giveUp = Date.now() + EXIT_WRITE_PATIENCE_MS;
    while (off < buf.length) {
      try {
        off += fs.writeSync(this.fd, buf, off, buf.length - off);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EAGAIN' || Date.now() > giveUp) {
          this.fail(e, buf, off);
          return;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_RETRY_MS);
      }
    }
    this.succeeded();
  }

  private flushNow(): void {
    if (this.inFlight) this.flushWanted = true;
    else if (this.pending !== '' || this.dropped > 0) this.startWrite();
    else this.settle();
  }

  /** The pending lines as bytes (with the note of lines dropped before them being written), emptied. */
  private take(): Buffer {
    let text = this.pending;
    if (this.dropped > 0 && this.droppedLine !== undefined) text += this.droppedLine(this.dropped);
    this.dropped = 0;
    this.pending = '';
    return Buffer.from(text, 'utf8');
  }

  private startWrite(): void {
    this.flushWanted = false;
    this.inFlight = true;
    this.writeFrom(this.take(), 0);
  }

  private writeFrom(buf: Buffer, off: number): void {
    fs.write(this.fd, buf, off, buf.length - off, null, (err, n) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.writeFrom(buf, off), EAGAIN_RETRY_MS);
          return;
        }
        this.fail(err, buf, off);
      } else if (off + n < buf.length) {
        this.writeFrom(buf, off + n);
        return;
      } else {
        this.succeeded();
      }
      this.inFlight = false;
      if (this.broken) return this.settle();
      if (this.pending.length >= this.chunk || ((this.flushWanted || this.waiters.length > 0) && this.pending !== '')) this.startWrite();
      else this.settle();
    });
  }

  /** Nothing in flight: resolve flush() callers when nothing is pending either. */
  private settle(): void {
    this.flushWanted = false;
    if (this.pending !== '' && !this.broken) {
      this.armTimer();
      return;
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** A write failed (not EAGAIN): the rest of `buf` from `off` is lost. */
  private fail(err: NodeJS.ErrnoException, buf: Buffer, off: number): void {
    // A reader that went away (EPIPE) or a closed descriptor will not come back: stop writing, say it once.
    if (err.code === 'EPIPE' || err.code === 'EBADF') {
      this.broken = true;
      this.pending = '';
      this.report(`meshward: writing log lines failed: ${err.message}; no more log lines will be written\n`);
      return;
    }
    const lost = linesIn(buf, off);
    const now = Date.now();
    if (this.failing === undefined) {
      this.failing = { since: now, lastReport: now, unreported: 0, lost, error: err.message };
      this.report(`meshward: writing log lines failed: ${err.message}; ${lost} lines lost, still trying (a count every ${this.reportIntervalMs / 1000} s while it fails)\n`);
      return;
    }
    const f = this.failing;
    f.unreported += lost;
    f.lost += lost;
    f.error = err.message;
    if (now - f.lastReport >= this.reportIntervalMs) this.reportNow();
    else if (this.reportTimer === undefined) {
      // Said when the interval is over, even if nothing else is logged until then.
      this.reportTimer = setTimeout(() => {
        this.reportTimer = undefined;
        this.reportNow();
      }, this.reportIntervalMs - (now - f.lastReport));
      this.reportTimer.unref();
    }
  }

  /** The count of lines lost since the last report, if any. */
  private reportNow(): void {
    const f = this.failing;
    if (f === undefined || f.unreported === 0) return;
    this.report(`meshward: writing log lines still fails: ${f.error}; ${f.unreported} lines lost since the last report, ${f.lost} since ${new Date(f.since).toISOString()}\n`);
    f.unreported = 0;
    f.lastReport = Date.now();
  }

  /** A write went through: after failures, say so once (with what was lost in all). */
  private succeeded(): void {
    const f = this.failing;
    if (f === undefined) return;
    this.failing = undefined;
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    this.report(`meshward: writing log lines works again; ${f.lost} lines lost since ${new Date(f.since).toISOString()}\n`);
  }
}

/** Lines (newlines) in `buf` from `off`: a line cut by the failure counts as lost. */
function linesIn(buf: Buffer, off: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, off); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

function chunkFor(fd: number): number {
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() ? FILE_CHUNK : PIPE_CHUNK;
  } catch {
    return PIPE_CHUNK;
  }
}
