// Where the sidecar's log lines go: one ordered buffer in front of a file descriptor (stdout), written
// asynchronously in chunks. Every line of the process (pino's and the hand-built allowed-request lines of
// request-log.ts) goes through the same buffer, so lines keep the order they were logged in.
//
// Why not pino's destination (sonic-boom): with a minimum write size it computes Buffer.byteLength of its
// whole pending buffer on every write, which at 8–16 KiB was most of the cost of an allowed-request line
// (measured about 6.8 µs per line). Here a line is encoded straight into the chunk being filled,
// a Buffer allocated once and reused after its write: no string of the whole chunk is built, so there is
// no rope of lines to flatten, no chunk-sized string and no new chunk-sized Buffer for the garbage
// collector (a string appended per line was flattened and converted at each write, and the rope's
// hundreds of pieces were copied by every scavenge that found them in the young generation).
//
// What is buffered is written: once a chunk's worth gathered (64 KiB, 4 KiB to a pipe, socket or
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

/**
 * Bytes gathered before a write to a regular file. Each write costs the thread pool's round trip (a
 * worker woken, the loop woken for its completion): measured here (a loop doing nothing else) about 42 µs of
 * CPU for a 16 KiB write and 50 µs for 64 KiB: about 0.74 µs and 0.22 µs per 290-byte request line.
 */
const FILE_CHUNK = 64 * 1024;
/** ... and to a pipe, socket or terminal. */
const PIPE_CHUNK = 4 * 1024;
/**
 * Room past the chunk size in each chunk buffer, as a fraction of it (16 KiB for a file): a line starts
 * in the buffer while it is under the chunk size, so any line of up to a third of this many characters
 * fits without its length in bytes being counted. A quarter: lines that wait behind a slow write fill
 * buffers 4/5 full at least.
 */
const SLACK_PER_CHUNK = 1 / 4;
/** Chunk buffers kept for reuse (one being filled, one in flight is the usual state). */
const SPARE_BUFFERS = 2;
/** The longest a line waits in the buffer when few are logged. */
const FLUSH_INTERVAL_MS = 250;
/** Bytes held while the descriptor does not keep up; lines beyond are dropped and counted. */
const MAX_PENDING = 16 * 1024 * 1024;
/** Wait before retrying a write the descriptor refused with EAGAIN (a full pipe). */
const EAGAIN_RETRY_MS = 5;
/** How long the synchronous exit write keeps retrying EAGAIN before giving up. */
const EXIT_WRITE_PATIENCE_MS = 5_000;
/** While writes keep failing, at most one stderr line per this interval. */
const FAILURE_REPORT_INTERVAL_MS = 10_000;

export interface LineBufferOptions {
  /** Bytes per write; by default from what `fd` is (64 KiB file, 4 KiB pipe/socket/terminal). */
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
  /** Bytes in a chunk buffer: the chunk and room for the line that reaches it. */
  private readonly capacity: number;
  /** The chunk being filled: `used` bytes of lines (`capacity` bytes, or more for a long line). */
  private buf: Buffer;
  private used = 0;
  /** Chunks filled while a write was in flight, oldest first, each trimmed to its lines. */
  private full: Buffer[] = [];
  /** Bytes in `full` and `buf`: what the next write takes. */
  private pendingBytes = 0;
  /** Chunk buffers whose write completed, for the next chunks. */
  private spare: Buffer[] = [];
  /** The memory of the chunk buffers this buffer allocated (only those are reused). */
  private readonly own = new WeakSet<ArrayBufferLike>();
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
    this.chunk = opts.chunk ?? (isFile(fd) ? FILE_CHUNK : PIPE_CHUNK);
    this.capacity = this.chunk + Math.ceil(this.chunk * SLACK_PER_CHUNK);
    this.buf = this.newChunkBuffer();
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
    if (this.pendingBytes > MAX_PENDING) {
      this.dropped++;
      return;
    }
    // used < chunk here (a chunk is sealed once it reaches the size), so a line of up to a third of the
    // slack in characters fits whatever it holds (3 bytes per UTF-16 unit at most); a longer one is measured.
    if (line.length * 3 > this.buf.length - this.used) {
      const bytes = Buffer.byteLength(line);
      if (bytes > this.buf.length - this.used) this.seal(bytes);
    }
    const n = this.buf.write(line, this.used);
    this.used += n;
    this.pendingBytes += n;
    if (this.inFlight) {
      if (this.used >= this.chunk) this.seal(0);
      return;
    }
    if (this.pendingBytes >= this.chunk) this.startWrite();
    else this.armTimer();
  }

  /** Moves the chunk being filled to `full` and starts one that holds at least `need` bytes. */
  private seal(need: number): void {
    if (this.used > 0) this.full.push(this.buf.subarray(0, this.used));
    this.used = 0;
    const spare = this.spare.pop();
    this.buf = need > this.capacity ? Buffer.allocUnsafeSlow(need) : spare ?? this.newChunkBuffer();
    if (need > this.capacity && spare !== undefined) this.spare.push(spare);
  }

  /** Nothing pending: no line gathered, none waiting behind a write. */
  private get empty(): boolean {
    return this.pendingBytes === 0;
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
    if (!this.inFlight && this.empty) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.flushNow();
    });
  }

  /** Writes everything buffered now, synchronously (process 'exit'). */
  flushSync(): void {
    if (this.broken || (this.empty && this.dropped === 0)) return;
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
          this.release(buf);
          return;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_RETRY_MS);
      }
    }
    this.succeeded();
    this.release(buf);
  }

  private flushNow(): void {
    if (this.inFlight) this.flushWanted = true;
    else if (!this.empty || this.dropped > 0) this.startWrite();
    else this.settle();
  }

  /**
   * The pending lines as one Buffer (with the note of lines dropped before them), emptied. Usually the
   * chunk being filled itself, trimmed: it is not written into again until its write completed and
   * release() gave it back; a new one (a spare) takes its place.
   */
  private take(): Buffer {
    let parts = this.full;
    this.full = [];
    if (this.used > 0) parts.push(this.buf.subarray(0, this.used));
    this.used = 0;
    this.pendingBytes = 0;
    if (parts.length === 1 && parts[0]!.buffer === this.buf.buffer) this.buf = this.spare.pop() ?? this.newChunkBuffer();
    if (this.dropped > 0 && this.droppedLine !== undefined) parts = [...parts, Buffer.from(this.droppedLine(this.dropped), 'utf8')];
    this.dropped = 0;
    if (parts.length === 1) return parts[0]!;
    // Chunks that waited behind a slow write go out together; their buffers are reused from here on.
    const all = Buffer.concat(parts);
    for (const p of parts) this.release(p);
    return all;
  }

  /** A chunk buffer of the usual size, its memory this buffer's own (never a slice of Buffer's shared pool). */
  private newChunkBuffer(): Buffer {
    const b = Buffer.allocUnsafeSlow(this.capacity);
    this.own.add(b.buffer);
    return b;
  }

  /**
   * A buffer no write holds any more: kept for the next chunks when it is one of ours (a few of them).
   * Buffer.concat's and Buffer.from's results may be slices of Node's shared pool: never written into.
   */
  private release(b: Buffer): void {
    const whole = b.buffer;
    if (this.spare.length < SPARE_BUFFERS && this.own.has(whole) && whole !== this.buf.buffer && !this.spare.some((s) => s.buffer === whole)) {
      this.spare.push(Buffer.from(whole));
    }
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
      this.release(buf);
      this.inFlight = false;
      if (this.broken) return this.settle();
      if (this.pendingBytes >= this.chunk || ((this.flushWanted || this.waiters.length > 0) && !this.empty)) this.startWrite();
      else this.settle();
    });
  }

  /** Nothing in flight: resolve flush() callers when nothing is pending either. */
  private settle(): void {
    this.flushWanted = false;
    if (!this.empty && !this.broken) {
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
      this.full = [];
      this.used = 0;
      this.pendingBytes = 0;
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

function isFile(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
