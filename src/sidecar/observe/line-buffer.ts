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

export interface LineBufferOptions {
  /** Characters per write; by default from what `fd` is (16 KiB file, 4 KiB pipe/socket/terminal). */
  chunk?: number;
  /** A write failed (not EAGAIN); the chunk is dropped. Default: one line on stderr. */
  onError?: (err: NodeJS.ErrnoException) => void;
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
  private readonly onError: (err: NodeJS.ErrnoException) => void;
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
    this.onError = opts.onError ?? ((err) => {
      try {
        process.stderr.write(`meshward: writing log lines failed: ${err.message}\n`);
      } catch {
        // stderr is gone too: nothing left to tell
      }
    });
    this.droppedLine = opts.droppedLine;
    process.on('exit', () => this.flushSync());
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
          this.fail(e);
          return;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_RETRY_MS);
      }
    }
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
        this.fail(err);
      } else if (off + n < buf.length) {
        this.writeFrom(buf, off + n);
        return;
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

  private fail(err: NodeJS.ErrnoException): void {
    // A reader that went away (EPIPE) or a closed descriptor will not come back: stop writing.
    if (err.code === 'EPIPE' || err.code === 'EBADF') {
      this.broken = true;
      this.pending = '';
    }
    this.onError(err);
  }
}

function chunkFor(fd: number): number {
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() ? FILE_CHUNK : PIPE_CHUNK;
  } catch {
    return PIPE_CHUNK;
  }
}
