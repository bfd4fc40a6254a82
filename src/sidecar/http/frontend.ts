// HttpFrontend: HTTP/1.1 and HTTP/2 on TLS sockets the inbound listener has already verified. It owns
// one node http server and one http2 server that never listen: accept() hands each a socket by ALPN.
// The Connection (identity, principal, xfcc) is attached to the socket/session once, so requests only
// look it up. drain() stops new requests (Connection: close, GOAWAY) and waits for in-flight ones.
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import { invalid } from '../../errors.js';
import type { Connection } from '../inbound/connection.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import type { Policy } from '../policy/policy.js';
import { ProxyContext } from './context.js';
import { Gate } from './gate.js';
import { createHttp1Server } from './http1.js';
import { createHttp2Server } from './http2.js';
import { H2cUpstream } from './upstream-h2c.js';
import { Http1Upstream } from './upstream-http1.js';

export interface HttpFrontendOptions {
  /** http://host:port (HTTP/1.1 app) or h2c://host:port (HTTP/2 / gRPC app). */
  app: URL;
  /** The current policy (hot-reloaded). */
  policy: () => Policy;
  logger: Logger;
  metrics: SidecarMetrics;
  /** Level of the line logged per allowed request (default debug); denials always get an audit line. */
  allowedLogLevel?: 'info' | 'debug' | 'silent';
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderSize: number;
  /** Checks API credentials on routes with `require`. */
  authenticator?: Authenticator | undefined;
  /** HTTP/2 streams per connection (default 100). */
  maxConcurrentStreams?: number;
}

export class HttpFrontend {
  private readonly ctx: ProxyContext;
  private readonly http1: HttpServer;
  private readonly http2: Http2Server;
  private closed = false;

  constructor(opts: HttpFrontendOptions) {
    const gate = new Gate(opts);
    const app = opts.app;
    if (app.port === '' && app.protocol !== 'http:') {
      throw invalid(`inbound.app ${JSON.stringify(app.href)} needs a port: write it as h2c://host:port`);
    }
    if (app.protocol === 'http:') {
      const upstream = new Http1Upstream(app);
      this.ctx = new ProxyContext(gate, upstream, undefined, app.host);
    } else if (app.protocol === 'h2c:') {
      const upstream = new H2cUpstream(app, opts.logger);
      this.ctx = new ProxyContext(gate, undefined, upstream, app.host);
    } else {
      throw invalid(`inbound.app ${JSON.stringify(app.href)} is not an HTTP app: use http://host:port or h2c://host:port`);
    }
    this.http1 = createHttp1Server(this.ctx, opts);
    this.http2 = createHttp2Server(this.ctx, opts);
  }

  /** Serves one verified TLS connection: ALPN "h2" → HTTP/2, anything else → HTTP/1.1. */
  accept(socket: TLSSocket, conn: Connection): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const peer = this.ctx.gate.peer(conn);
    if (socket.alpnProtocol === 'h2') {
      // The http2 server creates the session synchronously inside this emit ('session' picks up the peer).
      this.ctx.pendingPeer = peer;
      this.ctx.pendingSocket = socket;
      try {
        this.http2.emit('connection', socket);
      } finally {
        this.ctx.pendingPeer = undefined;
        this.ctx.pendingSocket = undefined;
      }
    } else {
      this.ctx.peers.set(socket, peer);
      this.http1.emit('connection', socket);
    }
  }

  /**
   * Ends one connection gracefully: an HTTP/2 session gets GOAWAY and finishes its open streams; an
   * HTTP/1.1 connection is closed now if idle, else after the response in progress, which carries
   * Connection: close when its headers are not out yet; a WebSocket tunnel is ended.
   */
  end(socket: TLSSocket): void {
    const session = this.ctx.sessionOn.get(socket);
    if (session !== undefined) {
      if (!session.closed && !session.destroyed) session.close();
      return;
    }
    if (this.ctx.tunnels.has(socket)) {
      socket.end();
      return;
    }
    this.ctx.ending.add(socket);
    const current = (socket as TLSSocket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (current == null) {
      socket.end();
      return;
    }
    if (!current.headersSent) current.shouldKeepAlive = false;
    else current.once('finish', () => socket.end());
  }

  /** Requests forwarded to the app and not finished yet. */
  get inflight(): number {
    return this.ctx.inflight;
  }

  /**
   * Stops taking requests: HTTP/1.1 responses carry Connection: close and idle keep-alive connections
   * are closed; HTTP/2 sessions get GOAWAY. Resolves when in-flight requests are done or after timeoutMs.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.ctx.draining = true;
    this.http1.closeIdleConnections();
    for (const session of this.ctx.sessions.keys()) session.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.ctx.whenIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    this.http1.closeIdleConnections();
  }

  /** Closes everything at once: client connections, tunnels and the app pool. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.draining = true;
    this.http1.closeAllConnections();
    this.http1.close();
    for (const session of this.ctx.sessions.keys()) session.destroy();
    for (const socket of this.ctx.tunnels) socket.destroy();
    this.ctx.http1App?.close();
    this.ctx.h2cApp?.close();
  }
}
