// Pooled keep-alive HTTP/1.1 connections to an http:// app, without node's ClientRequest: each request
// head is built as one string and written with one write, and the response is read by the strict parser
// in upstream-response.ts. Measured on this machine against http.Agent + http.request (README/report):
// the JavaScript layer of ClientRequest/IncomingMessage was most of the proxy's cost per request.
// Bodies stream both ways with backpressure; a socket is reused only after a complete, well-framed
// exchange with nothing left over, and an idempotent request (no body, or one held whole) that loses a race
// with an app closing an idle connection is retried once on a fresh one.
import net from 'node:net';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Framing, UpstreamResponse, parseResponseHead } from './upstream-response.js';

/** How the request body is framed on the way to the app. */
export type BodyKind = 'none' | 'length' | 'chunked';

/** A request body the sidecar already holds whole (read to check an HMAC signature), sent with the head. */
export interface WholeBody {
  body: Buffer;
  /** Trailer fields (name, value, …) for a chunked body's last chunk; must be empty for 'length'. */
  trailers: readonly string[];
}

/** Head and body up to this size go out as one Buffer in one write; larger ones in one corked writev. */
const ONE_BUFFER_BYTES = 16 * 1024;

/**
 * Methods sent again on a fresh connection when a reused one closes before any answer (RFC 9110 §9.2.2: a
 * proxy must not retry a non-idempotent request on its own). The app may have read and applied a POST or
 * PATCH before closing without an answer; the client then gets 502 and decides itself.
 */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const MAX_HEAD = 64 * 1024;
const READ_BUFFER_SIZE = 64 * 1024;
const MAX_IDLE = 128;
const IDLE_MS = 30_000;
/**
 * An idle connection is reused only until this long before the app said it would close it (`Keep-Alive:
 * timeout=N`; node's http server says 5 s and closes at 5 s): a request sent as the app closes fails, and a
 * POST or PATCH cannot be sent again (IDEMPOTENT_METHODS). undici keeps the same margin.
 */
const KEEP_ALIVE_MARGIN_MS = 1000;

/** Until when an idle connection may be reused, from the app's Keep-Alive timeout (-1: none given). */
export function reusableUntil(now: number, keepAliveTimeoutMs: number): number {
  if (keepAliveTimeoutMs < 0) return now + IDLE_MS;
  // A short timeout keeps half of itself rather than nothing.
  return now + Math.min(IDLE_MS, Math.max(keepAliveTimeoutMs - KEEP_ALIVE_MARGIN_MS, keepAliveTimeoutMs / 2));
}
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

/** One connection to the app and the exchange it currently carries. */
class AppConnection {
  readonly socket: Socket;
  exchange: Exchange | undefined;
  /** While idle: reused only before this time (reusableUntil). */
  reuseUntil = 0;
  /** The app's Keep-Alive timeout from the last response (-1: none given). */
  keepAliveTimeoutMs = -1;
  /** It has carried at least one complete exchange (so a failure may be an app closing it while idle). */
  reused = false;

  constructor(readonly pool: Http1Upstream, readBuffer: Buffer) {
    // `onread` hands each read to the callback in the pool's one buffer, instead of allocating a 64 KiB
    // buffer per read and pushing it through a Readable (malloc/free and the stream machinery showed up
    // in profiles of keep-alive load). The parser consumes it synchronously; what outlives the callback
    // (a partial head, body bytes) is copied out by Exchange.onData.
    this.socket = net.connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (n: number, buf: Uint8Array) => this.onRead((buf as Buffer).subarray(0, n)) },
    });
    const socket = this.socket;
    socket.on('end', () => {
      const ex = this.exchange;
      if (ex !== undefined) ex.onEnd();
      socket.destroy();
    });
    socket.on('error', (err: Error) => this.exchange?.onFailure(err));
    socket.on('close', () => {
      pool.forget(this);
      this.exchange?.onFailure(new Error('the app closed the connection'));
    });
  }

  /** Always true: backpressure is applied with socket.pause() by the exchange itself. */
  private onRead(chunk: Buffer): boolean {
    const ex = this.exchange;
    if (ex === undefined) this.socket.destroy(); // bytes nobody asked for: the connection is not trustworthy
    else ex.onData(chunk);
    return true;
  }
}

/** One request/response on an AppConnection. */
export class Exchange {
  /** The request body sink when the request has one (pipe the client's body into it). */
  readonly body: (Writable & { trailers: string[] }) | undefined;
  private conn: AppConnection | undefined;
  private state = State.Head;
  private pending: Buffer | undefined;
  private remaining = 0;
  private res: UpstreamResponse | undefined;
  private keepAlive = false;
  private requestDone: boolean;
  private settled = false;
  private retried = false;
  /** A body held whole (sent with the head by startWith, and again on a retry). */
  private whole: WholeBody | undefined;

  constructor(
    private readonly pool: Http1Upstream,
    private readonly method: string,
    private readonly head: string,
    private readonly kind: BodyKind,
    /** Gets the response once its head is read; `res.body` is set when the whole body came with it. */
    private readonly onResponse: (res: UpstreamResponse) => void,
    private readonly onError: (err: Error) => void,
    whole?: WholeBody,
  ) {
    if (whole !== undefined && kind !== 'none') {
      // The body is here already: no sink, no stream machinery; head and body leave in the same write.
      this.requestDone = true;
      this.body = undefined;
      this.whole = whole;
      this.startWith(pool.acquire(), whole);
      return;
    }
    this.requestDone = kind === 'none';
    // With a body, the head waits for the first bytes of it: a client whose body turns out malformed
    // (a bad chunk size) is refused before the app has seen anything, and head + first data share a write.
    this.body = kind === 'none' ? undefined : new BodyWriter(this, kind === 'chunked');
    if (kind === 'none') this.start(pool.acquire());
  }

  private start(conn: AppConnection): void {
    this.conn = conn;
    conn.exchange = this;
    // latin1: node decoded the client's header bytes (and the path) as latin1, so this writes them back
    // byte for byte; UTF-8 would turn each byte above 0x7f into two.
    conn.socket.write(this.head, 'latin1');
  }

  /** start() for a body held whole: the head, the framed body (and a chunked body's trailers) in one write. */
  private startWith(conn: AppConnection, whole: WholeBody): void {
    this.conn = conn;
    conn.exchange = this;
    const { body } = whole;
    let before = this.head;
    let after = '';
    if (this.kind === 'chunked') {
      if (body.length > 0) {
        before += `${body.length.toString(16)}\r\n`;
        after = '\r\n';
      }
      after += '0\r\n';
      const t = whole.trailers;
      for (let i = 0; i < t.length; i += 2) after += `${t[i]}: ${t[i + 1]}\r\n`;
      after += '\r\n';
    }
    const socket = conn.socket;
    if (before.length + body.length + after.length <= ONE_BUFFER_BYTES) {
      // latin1 as in start(); one Buffer (a pool slice when small) is one plain write, no writev bookkeeping.
      const out = Buffer.allocUnsafe(before.length + body.length + after.length);
      let at = out.write(before, 0, 'latin1');
      at += body.copy(out, at);
      if (after.length > 0) out.write(after, at, 'latin1');
      socket.write(out);
      return;
    }
    socket.cork();
    socket.write(before, 'latin1');
    socket.write(body);
    if (after.length > 0) socket.write(after, 'latin1');
    socket.uncork();
  }

  /** Cancels the exchange (the client went away): the connection is closed, never reused. */
  abort(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.conn !== undefined) {
      this.conn.exchange = undefined;
      this.conn.socket.destroy();
    }
    this.res?.destroy();
  }

  /** The socket request body bytes go to (sending the head first), or undefined once the exchange is over. */
  begin(): Socket | undefined {
    if (this.settled) return undefined;
    if (this.conn === undefined) {
      const conn = this.pool.acquire();
      conn.socket.cork();
      this.start(conn);
      process.nextTick(() => conn.socket.uncork());
    }
    return this.conn!.socket;
  }

  requestFinished(): void {
    this.requestDone = true;
    if (this.state === State.Done) this.release();
  }

  onFailure(err: Error): void {
    if (this.settled) return;
    const res = this.res;
    const conn = this.conn!;
    if (res === undefined && this.state === State.Head && this.pending === undefined && conn.reused && (this.kind === 'none' || this.whole !== undefined) && !this.retried && IDEMPOTENT_METHODS.has(this.method)) {
      // Most likely the app closed this idle keep-alive connection as we sent: try once on a new one. A body
      // held whole can be sent again as well as no body (a streamed one is gone); only for methods that mean
      // the same when applied twice.
      this.retried = true;
      conn.exchange = undefined;
      if (this.whole !== undefined) this.startWith(this.pool.acquire(true), this.whole);
      else this.start(this.pool.acquire(true));
      return;
    }
    this.settled = true;
    conn.exchange = undefined;
    conn.socket.destroy();
    if (res === undefined) this.onError(err);
    else if (!res.complete) res.destroy(err);
  }

  onEnd(): void {
    if (this.state === State.UntilClose) {
      this.finish();
      return;
    }
    this.onFailure(new Error('the app closed the connection before the response was complete'));
  }

  private fail(reason: string): void {
    this.onFailure(new Error(`the app sent a malformed response: ${reason}`));
  }

  /** Bytes from the app; `chunk` is only valid during this call (the pool reuses its read buffer). */
  onData(chunk: Buffer): void {
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    let at = 0;
    while (at < buf.length && !this.settled) {
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf('\r\n\r\n', at, 'latin1');
          if (end === -1) {
            if (buf.length - at > MAX_HEAD) return this.fail('response head too large');
            this.pending = Buffer.from(buf.subarray(at));
            return;
          }
          const head = parseResponseHead(buf.toString('latin1', at, end), this.method);
          at = end + 4;
          if (typeof head === 'string') return this.fail(head);
          if (head.status < 200) {
            if (head.status === 101) return this.fail('101 Switching Protocols to a request that did not ask for it');
            continue; // 1xx informational: the real response follows
          }
          this.keepAlive = head.keepAlive;
          this.conn!.keepAliveTimeoutMs = head.keepAliveTimeoutMs;
          const socket = this.conn!.socket;
          const res = new UpstreamResponse(() => socket.resume());
          res.statusCode = head.status;
          res.statusMessage = head.message;
          res.rawHeaders = head.raw;
          this.res = res;
          switch (head.framing) {
            case Framing.None:
              this.state = State.Done;
              break;
            case Framing.Length:
              this.remaining = head.length;
              this.state = head.length === 0 ? State.Done : State.Length;
              break;
            case Framing.Chunked:
              this.state = State.ChunkSize;
              break;
            case Framing.UntilClose:
              this.state = State.UntilClose;
              break;
          }
          if (this.state === State.Length && buf.length - at >= this.remaining) {
            // The whole body is already here (the common small response): hand it over in one piece,
            // so the client gets head and body in one write and no stream plumbing is set up.
            const end = at + this.remaining;
            res.body = Buffer.from(buf.subarray(at, end));
            at = end;
            this.remaining = 0;
            this.state = State.Done;
          }
          this.onResponse(res);
          if (this.state === State.Done) {
            if (at < buf.length) this.keepAlive = false;
            return this.finish();
          }
          break;
        }
        case State.Length:
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          const piece = Buffer.from(buf.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            if (this.state === State.Length) this.state = State.Done;
            else this.state = State.ChunkDataEnd;
          }
          if (!this.res!.push(piece)) this.conn!.socket.pause();
          if (this.state === State.Done) {
            if (at < buf.length) this.keepAlive = false;
            return this.finish();
          }
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf(CRLF, at);
          if (eol === -1) {
            if (buf.length - at > 1024) return this.fail('chunk size line too long');
            this.pending = Buffer.from(buf.subarray(at));
            return;
          }
          const line = buf.toString('latin1', at, eol);
          at = eol + 2;
          const semi = line.indexOf(';');
          const hex = semi === -1 ? line : line.slice(0, semi);
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.fail(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
          const size = parseInt(hex, 16);
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkDataEnd: {
          if (buf.length - at < 2) {
            this.pending = Buffer.from(buf.subarray(at));
            return;
          }
          if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) return this.fail('chunk not followed by CRLF');
          at += 2;
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const eol = buf.indexOf(CRLF, at);
          if (eol === -1) {
            if (buf.length - at > MAX_HEAD) return this.fail('trailers too large');
            this.pending = Buffer.from(buf.subarray(at));
            return;
          }
          if (eol === at) {
            at += 2;
            this.state = State.Done;
            if (at < buf.length) this.keepAlive = false;
            return this.finish();
          }
          const line = buf.toString('latin1', at, eol);
          at = eol + 2;
          const colon = line.indexOf(':');
          if (colon <= 0 || line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09) return this.fail('malformed trailer');
          this.res!.rawTrailers.push(line.slice(0, colon), line.slice(colon + 1).trim());
          break;
        }
        case State.UntilClose: {
          if (!this.res!.push(Buffer.from(at === 0 ? buf : buf.subarray(at)))) this.conn!.socket.pause();
          return;
        }
        case State.Done:
          this.keepAlive = false;
          return;
      }
    }
  }

  private finish(): void {
    const res = this.res!;
    res.complete = true;
    if (res.body === undefined) res.push(null);
    if (this.requestDone) this.release();
  }

  /** Both directions are complete: the connection goes back to the pool, or is closed. */
  private release(): void {
    if (this.settled) return;
    this.settled = true;
    const conn = this.conn!;
    conn.exchange = undefined;
    if (this.keepAlive) this.pool.release(conn);
    else conn.socket.destroy();
  }
}

/** The request body on its way to the app: raw for Content-Length, chunk-framed otherwise. */
class BodyWriter extends Writable {
  /** Trailer fields (name, value, …) to send after the last chunk; set before end(). Chunked bodies only. */
  trailers: string[] = [];

  constructor(private readonly ex: Exchange, private readonly chunked: boolean) {
    super();
    this.on('error', () => {}); // failures reach the caller through the exchange's onError
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const socket = this.ex.begin();
    if (socket === undefined || socket.destroyed) {
      cb(); // the exchange is over (answered early or failed): the rest of the body is dropped
      return;
    }
    if (!this.chunked) {
      socket.write(chunk, () => cb());
      return;
    }
    if (chunk.length === 0) {
      cb();
      return;
    }
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`);
    socket.write(chunk);
    socket.write(CRLF, () => cb());
    socket.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const socket = this.ex.begin();
    if (this.chunked && socket !== undefined && !socket.destroyed) {
      if (this.trailers.length === 0) socket.write(LAST_CHUNK);
      else {
        let block = '0\r\n';
        for (let i = 0; i < this.trailers.length; i += 2) block += `${this.trailers[i]}: ${this.trailers[i + 1]}\r\n`;
        socket.write(`${block}\r\n`, 'latin1');
      }
    }
    this.ex.requestFinished();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.writableFinished) this.ex.abort();
    cb(err);
  }
}

export class Http1Upstream {
  readonly host: string;
  readonly port: number;
  private readonly idle: AppConnection[] = [];
  /** Shared by every connection of the pool: reads are parsed synchronously on this one thread. */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(app: URL) {
    this.host = app.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(app.port || 80);
    this.sweeper = setInterval(() => this.sweep(), IDLE_MS / 3);
    this.sweeper.unref();
  }

  /**
   * Sends a request: `headers` is flat [name, value, …] (must carry Host, and Content-Length or
   * Transfer-Encoding: chunked to match `kind`); the head goes out in one write. `whole`: a body already
   * read (then `body` of the exchange is undefined and the request is complete at once).
   */
  request(
    method: string,
    path: string,
    headers: string[],
    kind: BodyKind,
    onResponse: (res: UpstreamResponse) => void,
    onError: (err: Error) => void,
    whole?: WholeBody,
  ): Exchange {
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    head += '\r\n';
    return new Exchange(this, method, head, kind, onResponse, onError, whole);
  }

  /** A connection for one exchange: the most recently used idle one, or a new one. */
  acquire(fresh = false): AppConnection {
    if (!fresh) {
      const now = Date.now();
      while (this.idle.length > 0) {
        const conn = this.idle.pop()!;
        if (conn.reuseUntil <= now) conn.socket.destroy(); // the app may be closing it right now
        else if (!conn.socket.destroyed) return conn;
      }
    }
    const conn = new AppConnection(this, this.readBuffer);
    if (this.closed) conn.socket.destroy();
    return conn;
  }

  release(conn: AppConnection): void {
    if (this.closed || this.idle.length >= MAX_IDLE || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.reused = true;
    conn.reuseUntil = reusableUntil(Date.now(), conn.keepAliveTimeoutMs);
    if (conn.socket.isPaused()) conn.socket.resume();
    this.idle.push(conn);
  }

  forget(conn: AppConnection): void {
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
  }

  private sweep(): void {
    const now = Date.now();
    for (const conn of this.idle.slice()) if (conn.reuseUntil <= now) conn.socket.destroy();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
  }
}
