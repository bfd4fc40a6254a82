// HTTP/2 clients: an http2 server session on the already-verified TLS socket, with bounded streams,
// header lists and session memory, and protection against rapid reset (many streams opened and
// cancelled): a session whose client cancelled RAPID_RESET_LIMIT streams, more than half of all it
// opened, is closed with ENHANCE_YOUR_CALM (no clock involved). Each stream passes the policy gate, then goes to an h2c:// app as an HTTP/2
// stream (trailers both ways, for gRPC) or to an http:// app as an HTTP/1.1 request.
import http2 from 'node:http2';
import type { Http2Server, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { AuthRequest, RequestHeaders } from '../../auth/verdict.js';
import type { Decision } from '../policy/policy.js';
import { readBody, sha256Of, whenSettled } from './body.js';
import type { ProxyContext, SessionState } from './context.js';
import { outcomeOf, type Outcome, type Peer } from './gate.js';
import { isGrpc } from './grpc.js';
import { appendIdentity, credentialHeaders, forwardableTrailers, http1ResponseToHttp2, http2TrailerPairs, trailerObject, http2RequestToH2c, http2RequestToHttp1, setIdentity, stripCredentials, stripCredentialFields, type IdentityHeaders } from './headers.js';
import { authorizedIds, decisionRefusal } from './http1.js';
import { refusal, sendHttp2, type Refusal } from './responses.js';
import type { BodyKind } from './upstream-http1.js';
import type { UpstreamResponse } from './upstream-response.js';

export interface Http2Limits {
  idleTimeoutMs: number;
  /** A stream's request (headers and body) must have arrived within this; 0 = no limit. */
  requestTimeoutMs: number;
  maxHeaderSize: number;
  maxConcurrentStreams?: number;
}

/**
 * The header list size nghttp2 enforces itself, as a multiple of maxHeaderSize. Between maxHeaderSize
 * and this the stream reaches JavaScript and gets a 431 (and the session is closed, like an HTTP/1.1
 * connection after its 431); beyond it node resets the stream with ENHANCE_YOUR_CALM while decoding,
 * before anything is allocated for it (an HPACK bomb never reaches JavaScript).
 */
const HARD_HEADER_LIST_FACTOR = 2;

/**
 * An HTTP/2 stream the policy let through, as the forwarders need it. Built once, in onStream, from
 * values already at hand: the forwarders read it, nothing copies it.
 */
interface AllowedHttp2Request {
  readonly peer: Peer;
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  /** The client sent END_STREAM with its headers: there is no request body. */
  readonly endStream: boolean;
  readonly grpc: boolean;
  readonly decision: Decision;
  /** performance.now() when the stream arrived (the duration metric). */
  readonly started: number;
  /** The identity headers for the app (see AllowedHttp1Request.ids). */
  readonly ids: IdentityHeaders;
  /** Set on routes with `require`: the credential kinds whose headers are removed before forwarding. */
  readonly strip?: readonly string[] | undefined;
  /** The body, when it was read to check an HMAC signature (then it is not piped). */
  readonly body?: Buffer | undefined;
  /** With `body`: the client's trailers as the app may receive them (forwardableTrailers), if it sent any. */
  readonly trailers?: string[] | undefined;
}

/** Streams a client may cancel in one session before the session is closed, if they are most of its streams. */
export const RAPID_RESET_LIMIT = 200;

const {
  NGHTTP2_FLAG_END_STREAM,
  NGHTTP2_CANCEL,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  HTTP_STATUS_NO_CONTENT,
  HTTP_STATUS_NOT_MODIFIED,
} = http2.constants;

function unreachable(err: Error): Refusal {
  return refusal(502, `the app is unreachable: ${err.message}`);
}

export function createHttp2Server(ctx: ProxyContext, limits: Http2Limits): Http2Server {
  const server = http2.createServer({
    maxSessionMemory: 16,
    maxHeaderListPairs: 256,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    peerMaxConcurrentStreams: 100,
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams ?? 100,
      maxHeaderListSize: limits.maxHeaderSize * HARD_HEADER_LIST_FACTOR,
      enablePush: false,
    },
  });
  server.on('session', (session: Http2Session) => {
    const peer = ctx.pendingPeer;
    if (peer === undefined) {
      session.destroy();
      return;
    }
    const state: SessionState = {
      peer,
      streams: 0,
      resets: 0,
      open: 0,
      abusive: false,
      // A stream reset before its response was complete (whether or not it was already aborted when the
      // handler saw it: HEADERS and RST_STREAM often arrive in one read).
      onStreamClose(this: ServerHttp2Stream) {
        state.open--;
        if (this.aborted || this.rstCode === NGHTTP2_CANCEL) countReset(ctx, session, state);
      },
    };
    ctx.sessions.set(session, state);
    if (ctx.pendingSocket !== undefined) ctx.sessionOn.set(ctx.pendingSocket, session);
    // node's session timeout counts frames, not streams: a stream whose app is slow to answer sends none,
    // and closing then would GOAWAY a busy session. Idle means no open stream (Envoy's idle_timeout).
    // node re-arms the timer on the next frame, but registers a callback given to setTimeout() with
    // once(): the listener is added with on() so a later idle period still closes the session.
    session.setTimeout(limits.idleTimeoutMs);
    session.on('timeout', () => {
      if (state.open === 0) session.close();
    });
    session.on('error', (err) => ctx.gate.protocolError(peer, 400, `HTTP/2 session error: ${err.message}`, { code: (err as NodeJS.ErrnoException).code }));
    session.on('close', () => ctx.sessions.delete(session));
    if (ctx.draining) session.close();
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => onStream(ctx, limits, stream, headers, flags, rawHeaders));
  return server;
}

function countReset(ctx: ProxyContext, session: Http2Session, state: SessionState): void {
  // Cancelling a stream is normal (a gRPC deadline, a closed tab); cancelling most of them, many times,
  // is the rapid-reset attack: the server does the work of each request, the client pays nothing.
  if (++state.resets < RAPID_RESET_LIMIT || state.resets * 2 <= state.streams || state.abusive) return;
  state.abusive = true;
  ctx.gate.protocolError(state.peer, 400, `HTTP/2 rapid reset: the client cancelled ${state.resets} of ${state.streams} streams, session closed`);
  session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  session.destroy();
}

/** The size of a header list as HPACK and SETTINGS_MAX_HEADER_LIST_SIZE count it (RFC 7541 §4.1). */
export function headerListSize(headers: IncomingHttpHeaders): number {
  let size = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') size += name.length + value.length + 32;
    else for (const v of value) size += name.length + v.length + 32;
  }
  return size;
}

/**
 * limits.requestTimeout for one stream, as the HTTP/1.1 server applies it per request: the request body
 * must have ended within it. A stream still receiving then gets 408 and RST_STREAM(NO_ERROR) ("stop
 * sending", RFC 9113 §8.1) when nothing was answered yet, otherwise RST_STREAM(CANCEL).
 */
function limitRequestTime(ctx: ProxyContext, stream: ServerHttp2Stream, peer: Peer, grpc: boolean, timeoutMs: number): void {
  const timer = setTimeout(() => {
    if (stream.destroyed || stream.closed) return;
    const reason = 'the request was not received within the request timeout';
    ctx.gate.protocolError(peer, 408, reason, { stream: stream.id });
    if (stream.headersSent) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    sendHttp2(stream, refusal(408, reason), grpc);
    stream.close(NGHTTP2_NO_ERROR); // after the 408 is out: node waits for the writable side to finish
  }, timeoutMs);
  const clear = (): void => clearTimeout(timer);
  stream.once('end', clear);
  stream.once('close', clear);
}

/**
 * One client stream. `rawHeaders`: the header lines as received, flat [name, value, …]; the credential
 * checks read them, since `headers` folds duplicates (see credentialHeaders).
 */
function onStream(ctx: ProxyContext, limits: Http2Limits, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: readonly string[]): void {
  const started = performance.now();
  stream.on('error', () => {});
  const state = ctx.sessions.get(stream.session!);
  if (state === undefined) {
    stream.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  state.streams++;
  state.open++;
  stream.once('close', state.onStreamClose);
  // HEADERS and RST_STREAM often arrive in one read: a stream the client already cancelled is counted
  // (onStreamClose) and never sent to the app.
  if (stream.aborted || stream.closed || stream.destroyed) return;
  const peer = state.peer;
  const method = headers[':method']!;
  const target = headers[':path'];
  const grpc = isGrpc(headers['content-type']);
  const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  if (headerListSize(headers) > limits.maxHeaderSize) {
    const reason = 'the request headers are larger than the limit';
    ctx.gate.protocolError(peer, 431, reason, { method });
    sendHttp2(stream, refusal(431, reason), grpc);
    if (!endStream) stream.close(NGHTTP2_NO_ERROR);
    stream.session?.close(); // GOAWAY: as after an HTTP/1.1 431, this client gets no further requests here
    return;
  }
  if (!endStream && limits.requestTimeoutMs > 0) limitRequestTime(ctx, stream, peer, grpc, limits.requestTimeoutMs);
  if (target === undefined || method === 'CONNECT') {
    const reason = 'CONNECT and requests without :path are not supported';
    ctx.gate.protocolError(peer, 400, reason, { method });
    sendHttp2(stream, refusal(400, reason), grpc);
    if (!endStream) stream.resume();
    return;
  }
  const d = ctx.gate.decide(peer, method, target);
  if (!d.allow) {
    sendHttp2(stream, decisionRefusal(d, peer), grpc);
    // Read and drop what the client still sends, so the stream can finish cleanly.
    if (!endStream) stream.resume();
    ctx.gate.done(peer, outcomeOf(d), d.rule, started, method, d.target || target, d.status);
    return;
  }
  ctx.inflight++;
  if (d.pending !== undefined) return authenticate(ctx, peer, stream, headers, rawHeaders, method, endStream, grpc, d, started);
  forward(ctx, { peer, stream, headers, method, endStream, grpc, decision: d, started, ids: peer.ids });
}

function forward(ctx: ProxyContext, request: AllowedHttp2Request): void {
  if (ctx.h2cApp !== undefined) forwardToH2c(ctx, request);
  else forwardToHttp1(ctx, request);
}

/**
 * The credential check's view of an HTTP/2 request (raw :path: the signature base uses it as sent).
 * `fields`: from the raw header lines, so a duplicated credential header is seen as two (credentialHeaders).
 */
function authRequest(ctx: ProxyContext, peer: Peer, headers: IncomingHttpHeaders, fields: RequestHeaders, method: string, body: Buffer | undefined): AuthRequest {
  const target = headers[':path']!;
  const q = target.indexOf('?');
  const r: AuthRequest = { method, scheme: 'https', authority: headers[':authority'] ?? headers.host ?? '', path: q < 0 ? target : target.slice(0, q), headers: fields };
  if (q >= 0) r.query = target.slice(q + 1);
  const authPeer = ctx.gate.authPeer(peer);
  if (authPeer !== undefined) r.peer = authPeer;
  if (body !== undefined) r.body = { sha256: sha256Of(body) };
  return r;
}

/** A route with `require` (see http1.ts authenticate): body first when an HMAC signature covers it, then the checks. */
function authenticate(ctx: ProxyContext, peer: Peer, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[], method: string, endStream: boolean, grpc: boolean, d: Decision, started: number): void {
  const fields = credentialHeaders(rawHeaders, d.pending!.hmac);
  const fail = (): void => {
    if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    ctx.requestDone();
  };
  // The client's trailers come before the end of its body: kept for the app when the body is read whole.
  let trailers: string[] | undefined;
  const decideWith = (body: Buffer | undefined): void => {
    whenSettled(ctx.gate.authenticate(peer, d, authRequest(ctx, peer, headers, fields, method, body)), (final) => {
      if (stream.destroyed || stream.closed) return ctx.requestDone();
      if (!final.allow) {
        sendHttp2(stream, decisionRefusal(final, peer), grpc);
        if (!endStream && body === undefined) stream.resume();
        ctx.gate.done(peer, outcomeOf(final), final.rule, started, method, final.target, final.status, final);
        return ctx.requestDone();
      }
      const ids = final.principals !== undefined ? authorizedIds(peer, final) : peer.ids;
      forward(ctx, { peer, stream, headers, method, endStream: endStream || body?.length === 0, grpc, decision: final, started, ids, strip: d.pending!.kinds, body, trailers });
    }, fail);
  };
  if (!(d.pending!.hmac && !endStream && fields['signature-input'] !== undefined)) return decideWith(undefined);
  const max = ctx.gate.authenticator.maxBodyBytes;
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  stream.once('trailers', (t: IncomingHttpHeaders) => {
    trailers = forwardableTrailers(http2TrailerPairs(t));
  });
  readBody(stream, max, declared, {
    body: decideWith,
    tooLarge: () => {
      const reason = `the body is larger than credentials.hmac.maxBody (${max} bytes), so its signature cannot be checked`;
      ctx.gate.protocolError(peer, 413, reason, { method, path: d.target });
      sendHttp2(stream, refusal(413, reason), grpc);
      stream.resume();
      ctx.gate.done(peer, 'bad_request', d.rule, started, method, d.target, 413);
      ctx.requestDone();
    },
    failed: fail,
  });
}

/**
 * The app could not be reached or broke off: 502 (gRPC 14) while nothing was sent, otherwise the stream
 * is reset (sendHttp2 decides). True when it counts as an upstream error (the client got our answer).
 */
function answerUpstreamFailure(ctx: ProxyContext, request: AllowedHttp2Request, err: Error): boolean {
  const { stream } = request;
  if (stream.destroyed || stream.closed) return false;
  const counted = !stream.headersSent;
  if (counted) ctx.gate.upstreamError(request.peer, request.method, request.decision.target, err);
  sendHttp2(stream, unreachable(err), request.grpc);
  return counted;
}

function forwardToHttp1(ctx: ProxyContext, request: AllowedHttp2Request): void {
  const { peer, stream, headers, method, endStream, decision: d, started } = request;
  const out = http2RequestToHttp1(headers, !endStream && headers['content-length'] === undefined);
  if (headers.host === undefined && headers[':authority'] === undefined) out.push('host', ctx.appAuthority);
  if (request.strip !== undefined) stripCredentials(out, request.strip);
  appendIdentity(out, request.ids);
  let outcome: Outcome = d.wouldDeny ? 'audit_deny' : 'allow';
  let status = 0;
  let complete = false;
  const kind: BodyKind = endStream ? 'none' : headers['content-length'] !== undefined ? 'length' : 'chunked';
  const onResponse = (res: UpstreamResponse): void => {
    if (stream.destroyed || stream.closed) return;
    status = res.statusCode;
    const noBody = method === 'HEAD' || status === HTTP_STATUS_NO_CONTENT || status === HTTP_STATUS_NOT_MODIFIED;
    if (noBody || res.body !== undefined) {
      complete = true;
      if (noBody || res.body!.length === 0) {
        stream.respond(http1ResponseToHttp2(status, res.headers), { endStream: true });
        if (res.body === undefined) res.resume();
      } else {
        stream.respond(http1ResponseToHttp2(status, res.headers));
        stream.end(res.body);
      }
      return;
    }
    res.on('end', () => {
      complete = true;
    });
    stream.respond(http1ResponseToHttp2(status, res.headers), { waitForTrailers: true });
    stream.once('wantTrailers', () => {
      const t = res.rawTrailers;
      const trailers: Record<string, string> = {};
      for (let i = 0; i < t.length; i += 2) trailers[t[i]!.toLowerCase()] = t[i + 1]!;
      stream.sendTrailers(trailers);
    });
    res.on('error', () => stream.close(NGHTTP2_INTERNAL_ERROR));
    res.pipe(stream);
  };
  const onError = (err: Error): void => {
    if (answerUpstreamFailure(ctx, request, err)) {
      outcome = 'upstream_error';
      status = 502;
    }
  };
  // A body read whole goes with the head; as a chunked body (no content-length) it ends with the client's trailers.
  const whole = request.body === undefined ? undefined : { body: request.body, trailers: kind === 'chunked' ? request.trailers ?? [] : [] };
  const exchange = ctx.http1App!.request(method, d.target, out, kind, onResponse, onError, whole);
  stream.on('close', () => {
    if (!complete) exchange.abort();
    ctx.gate.done(peer, outcome, d.rule, started, method, d.target, status, d);
    ctx.requestDone();
  });
  if (exchange.body !== undefined) {
    // The client's trailers arrive before the stream ends, so they are in place when the last chunk goes out
    // (a body with a Content-Length has no trailer section in HTTP/1.1: they are dropped there).
    const body = exchange.body;
    if (kind === 'chunked') stream.on('trailers', (t: IncomingHttpHeaders) => { body.trailers = forwardableTrailers(http2TrailerPairs(t)); });
    stream.pipe(body);
  }
}

function forwardToH2c(ctx: ProxyContext, request: AllowedHttp2Request): void {
  const { peer, stream, headers, method, endStream, decision: d, started } = request;
  const out = http2RequestToH2c(headers, d.target);
  if (out[':authority'] === undefined) out[':authority'] = ctx.appAuthority;
  if (request.strip !== undefined) stripCredentialFields(out, request.strip);
  setIdentity(out, request.ids);
  let outcome: Outcome = d.wouldDeny ? 'audit_deny' : 'allow';
  let status = 0;
  const fail = (err: Error): void => {
    if (answerUpstreamFailure(ctx, request, err)) {
      outcome = 'upstream_error';
      status = 502;
    }
  };
  stream.on('close', () => {
    if (up !== undefined && !up.closed) up.close(NGHTTP2_CANCEL);
    ctx.gate.done(peer, outcome, d.rule, started, method, d.target, status, d);
    ctx.requestDone();
  });
  let up: http2.ClientHttp2Stream | undefined;
  try {
    up = ctx.h2cApp!.request(out, endStream, !endStream);
  } catch (err) {
    fail(err as Error);
    return;
  }
  const upstream = up;
  let trailers: IncomingHttpHeaders | undefined;
  upstream.on('response', (h: IncomingHttpHeaders, fl: number) => {
    if (stream.destroyed || stream.closed) return;
    status = Number(h[':status']);
    if ((fl & NGHTTP2_FLAG_END_STREAM) !== 0) {
      stream.respond(h, { endStream: true }); // e.g. a gRPC trailers-only answer
      return;
    }
    stream.respond(h, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
    upstream.pipe(stream);
  });
  upstream.on('trailers', (t: IncomingHttpHeaders) => {
    trailers = t;
  });
  upstream.on('error', fail);
  upstream.on('close', () => {
    if (stream.destroyed || stream.closed) return;
    const code = upstream.rstCode ?? 0;
    if (!stream.headersSent) fail(new Error(`the app reset the stream (HTTP/2 error ${code})`));
    else if (code !== 0 && !stream.writableFinished) stream.close(code);
  });
  if (!endStream) {
    // The client's trailers, without what a trailer must not carry or only the sidecar sets (identity
    // headers smuggled after the body), as for HTTP/1.1 clients.
    let clientTrailers: string[] = request.trailers ?? [];
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      clientTrailers = forwardableTrailers(http2TrailerPairs(t));
    });
    upstream.once('wantTrailers', () => upstream.sendTrailers(trailerObject(clientTrailers)));
    if (request.body !== undefined) upstream.end(request.body);
    else stream.pipe(upstream);
  }
}
