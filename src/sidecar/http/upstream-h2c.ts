// HTTP/2 without TLS (h2c) to the app: one multiplexed session, reopened when the app sends GOAWAY,
// closes it, or it fails. Streams already open on a closing session finish on it.
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';

export class H2cUpstream {
  readonly authority: string;
  private readonly origin: string;
  private session: ClientHttp2Session | undefined;
  private closed = false;

  constructor(app: URL, private readonly logger: Logger) {
    this.authority = app.host;
    this.origin = `http://${app.host}`;
  }

  /** Opens a stream to the app. `waitForTrailers`: the caller sends trailers (or none) itself on 'wantTrailers'. */
  request(headers: OutgoingHttpHeaders, endStream: boolean, waitForTrailers: boolean): ClientHttp2Stream {
    try {
      return this.current().request(headers, { endStream, waitForTrailers });
    } catch (err) {
      // A session that ran out of stream ids or is closing: retire it and use a fresh one once.
      this.retire(this.session);
      if ((err as NodeJS.ErrnoException).code === 'ERR_HTTP2_INVALID_SESSION' || (err as NodeJS.ErrnoException).code === 'ERR_HTTP2_OUT_OF_STREAMS' || (err as NodeJS.ErrnoException).code === 'ERR_HTTP2_GOAWAY_SESSION') {
        return this.current().request(headers, { endStream, waitForTrailers });
      }
      throw err;
    }
  }

  private current(): ClientHttp2Session {
    const existing = this.session;
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    if (this.closed) throw Object.assign(new Error('the frontend is closed'), { code: 'ERR_HTTP2_INVALID_SESSION' });
    const session = http2.connect(this.origin, {
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
      maxSessionMemory: 64,
      peerMaxConcurrentStreams: 1000,
    });
    session.on('error', (err) => {
      this.logger.debug({ event: 'h2c_session_error', app: this.origin, error: err.message }, 'app session failed');
      this.retire(session);
    });
    session.on('goaway', () => this.retire(session));
    session.on('close', () => this.retire(session));
    this.session = session;
    return session;
  }

  private retire(session: ClientHttp2Session | undefined): void {
    if (session !== undefined && this.session === session) this.session = undefined;
  }

  close(): void {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    s?.destroy();
  }
}
