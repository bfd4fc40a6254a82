// Outbound HTTP/2 (prior knowledge from the app, e.g. a gRPC client with an insecure channel): streams
// are multiplexed onto one mTLS HTTP/2 session per upstream, trailers kept (gRPC status travels in them).
import { connect as http2Connect, constants, createServer as createHttp2Server } from 'node:http2';
import type { ClientHttp2Session, Http2Session, IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Credentials } from '../tls/credentials.js';
import { NO_CREDENTIALS, type UpstreamDeps } from './http1.js';
import { UpstreamTimeout, classifyUpstreamError, describeUpstreamError } from './upstream-tls.js';

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE } = constants;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/**
 * Serves HTTP/2 on a plaintext socket whose first bytes were already read to recognise the preface.
 * Node's HTTP/2 server reads the socket's handle directly and would miss bytes put back with unshift(),
 * so the socket is wrapped in a stream that replays them (a small cost on a path taken once per connection).
 */
export function serveHttp2(
  socket: Socket,
  first: Buffer,
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
  onSession: (session: Http2Session) => void,
): void {
  const wrapped = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  wrapped.push(first);
  socket.on('data', (chunk) => {
    if (!wrapped.push(chunk)) socket.pause();
  });
  socket.on('end', () => wrapped.push(null));
  socket.on('close', () => wrapped.destroy());
  const server = createHttp2Server();
  server.on('stream', onStream);
  server.on('session', onSession);
  server.on('sessionError', () => socket.destroy());
  server.emit('connection', wrapped);
  socket.resume();
}

function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || HOP_BY_HOP.has(name) || value === undefined) continue;
    if (name === 'te' && value !== 'trailers') continue;
    out[name] = value;
  }
  return out;
}

function failStream(stream: ServerHttp2Stream, grpc: boolean, reason: string, status: 502 | 504 = 502): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (grpc) {
    // Trailers-only response: UNAVAILABLE (14) is what a gRPC client retries.
    stream.respond({ [HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': encodeURIComponent(reason) }, { endStream: true });
    return;
  }
  const body = JSON.stringify({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason });
  stream.respond({ [HTTP2_HEADER_STATUS]: status, 'content-type': 'application/json' });
  stream.end(body);
}

export class Http2Upstream {
  private session?: ClientHttp2Session;
  private sessionCredentials?: Credentials;
  /** Set when the session being opened was given up for connectTimeout: its streams fail with this. */
  private connectFailure?: Error;

  constructor(private readonly deps: UpstreamDeps) {}

  forward(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A stream reset by the app, or closed by us with an error code, emits 'error': without a listener
    // that would be an uncaught exception taking the whole sidecar down.
    stream.on('error', () => undefined);
    stream.once('close', this.deps.started());
    const grpc = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? '').startsWith('application/grpc');
    const creds = this.deps.credentials();
    if (!creds) {
      this.deps.onError(NO_CREDENTIALS);
      failStream(stream, grpc, NO_CREDENTIALS.message);
      return;
    }
    const session = this.sessionFor(creds);
    const out = forwardable(headers);
    out[':method'] = headers[':method'];
    out[':path'] = headers[':path'];
    out[':authority'] = headers[':authority'] ?? headers.host;
    out[':scheme'] = 'https';
    let upstream;
    try {
      upstream = session.request(out);
    } catch (err) {
      this.deps.onError(err as Error);
      failStream(stream, grpc, describeUpstreamError(err as Error, this.deps.upstreamName));
      return;
    }
    upstream.on('response', (h, flags) => {
      if (stream.destroyed) return;
      const status = Number(h[HTTP2_HEADER_STATUS]) || 502;
      const response = forwardable(h);
      response[HTTP2_HEADER_STATUS] = status;
      // A trailers-only answer (how gRPC sends most errors: grpc-status in headers that end the stream)
      // must stay one: headers followed by empty trailers make grpc-js report INTERNAL instead.
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
        stream.respond(response, { endStream: true });
        return;
      }
      stream.respond(response, { waitForTrailers: true });
      upstream.pipe(stream);
    });
    let trailers: OutgoingHttpHeaders = {};
    upstream.on('trailers', (t) => (trailers = forwardable(t)));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    const { upstreamName, idleTimeoutMs } = this.deps;
    upstream.setTimeout(idleTimeoutMs, () => upstream.destroy(new UpstreamTimeout('idle', upstreamName, idleTimeoutMs)));
    upstream.on('error', (err) => {
      const failure = session.connecting && this.connectFailure ? this.connectFailure : err;
      this.deps.onError(failure);
      failStream(stream, grpc, describeUpstreamError(failure, upstreamName), classifyUpstreamError(failure).status);
    });
    stream.on('close', () => {
      if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
    });
    stream.pipe(upstream);
  }

  /** New credentials: the old session finishes its streams and closes; the next request opens a new one. */
  retire(): void {
    this.session?.close();
    this.session = undefined;
    this.sessionCredentials = undefined;
  }

  private sessionFor(creds: Credentials): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed && this.sessionCredentials === creds) return this.session;
    this.session?.close();
    const tls = this.deps.tlsFor(creds, ['h2']);
    const session = http2Connect(`https://${this.deps.upstreamName}`, { ...tls });
    this.connectFailure = undefined;
    const { upstreamName, connectTimeoutMs, idleTimeoutMs } = this.deps;
    const timer = setTimeout(() => {
      this.connectFailure = new UpstreamTimeout('connect', upstreamName, connectTimeoutMs);
      session.destroy(this.connectFailure);
    }, connectTimeoutMs);
    session.once('connect', () => clearTimeout(timer));
    session.once('close', () => clearTimeout(timer));
    // Idle: no stream and no frame for idleTimeout closes the session (the next request opens another).
    session.setTimeout(idleTimeoutMs, () => session.close());
    session.on('error', () => undefined); // each stream reports its own failure
    session.on('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    this.sessionCredentials = creds;
    return session;
  }
}
