// HTTP/1.1 clients: node's http server (llhttp, strict mode) on the already-verified TLS socket, the
// checks llhttp leaves to us (origin-form target, one Host, only "chunked", no CL+TE), the policy gate,
// then forwarding to an http:// app (pooled HTTP/1.1) or an h2c:// app (HTTP/2 stream), and WebSocket /
// Upgrade tunnelling for http:// apps. Every parser error gets a clean 400/408/431 and a log line.
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import http2 from 'node:http2';
import type { AuthRequest, RequestHeaders } from '../../auth/verdict.js';
import type { Decision } from '../policy/policy.js';
import { readBody, sha256Of, whenSettled } from './body.js';
import type { ProxyContext } from './context.js';
import { outcomeOf, type Outcome, type Peer } from './gate.js';
import { isGrpc } from './grpc.js';
import { appendIdentity, credentialHeaders, headerText, forwardableTrailers, http1RequestToH2c, trailerObject, http1ResponseHeaders, scanHttp1Request, setIdentity, stripCredentials, withoutPseudo, type Http1RequestScan, type IdentityHeaders } from './headers.js';
import { refusal, sendHttp1, sendRawHttp1, type Refusal } from './responses.js';
import type { BodyKind } from './upstream-http1.js';
import type { UpstreamResponse } from './upstream-response.js';

export interface Http1Limits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderSize: number;
}

/**
 * An HTTP/1.1 request the policy let through, as the forwarders need it. Built once, in onRequest, from
 * values already at hand: the forwarders read it, nothing copies it.
 */
interface AllowedHttp1Request {
  readonly peer: Peer;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly scan: Http1RequestScan;
  readonly decision: Decision;
  /** performance.now() when the request arrived (the duration metric). */
  readonly started: number;
  /** The identity headers for the app: the connection's, or those authorize() computed for a route with `require`. */
  readonly ids: IdentityHeaders;
  /** The body, when it was read to check an HMAC signature's Content-Digest (then it is not piped). */
  readonly body?: Buffer | undefined;
  /** With `body`: its chunked trailer section as the app may receive it (forwardableTrailers). */
  readonly trailers?: string[] | undefined;
}

const { NGHTTP2_CANCEL } = http2.constants;

/** The refusal a policy decision answers with. */
export function decisionRefusal(d: Decision, peer: Peer): Refusal {
  if (d.status === 400) return refusal(400, d.reason, { rule: d.rule });
  if (d.status === 401) {
    // docs/api-credentials.md: {"error":"unauthenticated","reason":…} and a challenge per missing or invalid proof.
    const r = refusal(401, d.reason, { rule: d.rule, ...(d.credential !== undefined ? { credential: d.credential } : {}), ...(d.refusal !== undefined ? { code: d.refusal } : {}) });
    if (d.challenges !== undefined) r.challenges = d.challenges;
    return r;
  }
  const extra: Record<string, string> = { rule: d.rule, identity: peer.principal.id };
  if (d.credential !== undefined) extra.credential = d.credential;
  if (d.scope !== undefined && d.credential !== undefined) extra.scope = d.scope;
  return refusal(d.status, d.reason, extra);
}

/** The credential check's view of an HTTP/1.1 request (raw target: the signature base uses it as sent). */
function authRequest(ctx: ProxyContext, peer: Peer, req: IncomingMessage, scan: Http1RequestScan, headers: RequestHeaders, body: Buffer | undefined): AuthRequest {
  const url = req.url!;
  const q = url.indexOf('?');
  const r: AuthRequest = {
    method: req.method!,
    scheme: 'https',
    authority: scan.host ?? '',
    path: q < 0 ? url : url.slice(0, q),
    headers,
  };
  if (q >= 0) r.query = url.slice(q + 1);
  const authPeer = ctx.gate.authPeer(peer);
  if (authPeer !== undefined) r.peer = authPeer;
  if (body !== undefined) r.body = { sha256: sha256Of(body) };
  return r;
}

/** The identity headers of a request authorize() let through. */
export function authorizedIds(peer: Peer, d: Decision): IdentityHeaders {
  return { xfcc: peer.ids.xfcc, clientId: peer.ids.clientId, scopes: headerText(d.scopes ?? ''), principal: headerText(d.principals ?? '') };
}

function unreachable(err: Error): Refusal {
  return refusal(502, `the app is unreachable: ${err.message}`);
}

/** Problems with the request line that llhttp accepts. */
function requestLineProblem(req: IncomingMessage): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} is not supported`;
  const url = req.url!;
  if (url.charCodeAt(0) !== 0x2f) return `the request target must be a path starting with '/' (origin-form), not ${JSON.stringify(url.slice(0, 100))}`;
  return undefined;
}

export function createHttp1Server(ctx: ProxyContext, limits: Http1Limits): http.Server {
  const requestTimeout = limits.requestTimeoutMs;
  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderSize,
    requestTimeout,
    headersTimeout: requestTimeout > 0 ? Math.min(limits.headersTimeoutMs, requestTimeout) : limits.headersTimeoutMs,
    insecureHTTPParser: false,
    // Checked here instead, so a missing Host gets the same JSON 400 and log line as every other refusal.
    requireHostHeader: false,
    noDelay: true,
    connectionsCheckingInterval: Math.max(250, Math.min(limits.headersTimeoutMs, 30_000) / 4),
  });
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(ctx, req, res, false));
  // Expect: 100-continue is answered only after the policy allowed the request, so a denied client
  // never sends its body.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(ctx, req, res, true));
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => onUpgrade(ctx, req, socket, head));
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    ctx.gate.protocolError(ctx.peers.get(socket), 400, 'CONNECT is not supported', { method: 'CONNECT' });
    sendRawHttp1(socket, refusal(400, 'CONNECT is not supported: send requests with a path'));
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => onClientError(ctx, err, socket));
  // node tracks connections (for headersTimeout, requestTimeout and closeIdleConnections) from the
  // 'listening' event; this server never listens, it is handed sockets, so start the tracking here.
  server.emit('listening');
  return server;
}

function onClientError(ctx: ProxyContext, err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || ctx.refused.has(socket)) {
    socket.destroy();
    return;
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const reason =
    status === 431
      ? 'the request headers are larger than the limit'
      : status === 408
        ? 'the request was not received within the request timeout'
        : `malformed HTTP/1.1 request: ${err.reason ?? err.message}`;
  ctx.gate.protocolError(ctx.peers.get(socket), status, reason, { code });
  // A response already being written on this socket cannot be followed by another one.
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current != null && current.headersSent) {
    socket.destroy();
    return;
  }
  sendRawHttp1(socket, refusal(status, reason));
}

function refuseFraming(ctx: ProxyContext, peer: Peer, req: IncomingMessage, res: ServerResponse, reason: string): void {
  ctx.gate.protocolError(peer, 400, reason, { method: req.method, path: req.url?.slice(0, 200) });
  ctx.refused.add(req.socket);
  // The framing of anything after this request is in doubt: answer and close.
  sendHttp1(res, refusal(400, reason), false, true);
}

function onRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
  const started = performance.now();
  const peer = ctx.peers.get(req.socket);
  if (peer === undefined) {
    res.destroy();
    return;
  }
  const lineProblem = requestLineProblem(req);
  if (lineProblem !== undefined) return refuseFraming(ctx, peer, req, res, lineProblem);
  const scan = scanHttp1Request(req.rawHeaders, false, ctx.h2cApp !== undefined);
  if (scan.problem !== undefined) return refuseFraming(ctx, peer, req, res, scan.problem);
  if (scan.host === undefined && req.httpVersionMinor >= 1) return refuseFraming(ctx, peer, req, res, 'an HTTP/1.1 request must have a Host header');

  const method = req.method!;
  const d = ctx.gate.decide(peer, method, req.url!);
  if (!d.allow) {
    // An unread body is not worth reading just to keep the connection: close instead.
    sendHttp1(res, decisionRefusal(d, peer), isGrpc(req.headers['content-type']), scan.hasBody || ctx.draining);
    ctx.gate.done(peer, outcomeOf(d), d.rule, started, method, d.target || req.url!, d.status);
    return;
  }
  ctx.inflight++;
  if (ctx.ending.has(req.socket)) res.shouldKeepAlive = false;
  if (d.pending !== undefined) return authenticate(ctx, peer, req, res, scan, d, started, expectsContinue);
  if (expectsContinue) res.writeContinue();
  const request: AllowedHttp1Request = { peer, req, res, scan, decision: d, started, ids: peer.ids };
  forward(ctx, request);
}

function forward(ctx: ProxyContext, request: AllowedHttp1Request): void {
  if (ctx.http1App !== undefined) forwardToHttp1(ctx, request);
  else forwardToH2c(ctx, request);
}

/**
 * A route with `require`: read the body first when an HMAC signature must be checked against it (up to
 * credentials.hmac.maxBody, else 413), check the credentials, then refuse (401/403/429) or forward without
 * the credential headers. Counted in `inflight` from the start, so a drain waits for it. The body is read
 * with callbacks and the check runs in the turn its last bytes arrived in: no promise turn on the way.
 */
function authenticate(ctx: ProxyContext, peer: Peer, req: IncomingMessage, res: ServerResponse, scan: Http1RequestScan, d: Decision, started: number, expectsContinue: boolean): void {
  const method = req.method!;
  // req.headers is built on first use: only refusals need content-type, so allowed requests never build it.
  const grpc = (): boolean => isGrpc(req.headers['content-type']);
  const headers = credentialHeaders(req.rawHeaders, d.pending!.hmac);
  const refuse = (final: Decision, r: Refusal, bodyUnread: boolean): void => {
    sendHttp1(res, r, grpc(), bodyUnread || ctx.draining);
    ctx.gate.done(peer, outcomeOf(final), final.rule, started, method, final.target || req.url!, r.status, final);
    ctx.requestDone();
  };
  const decideWith = (body: Buffer | undefined): void => {
    whenSettled(ctx.gate.authenticate(peer, d, authRequest(ctx, peer, req, scan, headers, body)), (final) => {
      if (res.destroyed) return ctx.requestDone();
      if (!final.allow) return refuse(final, decisionRefusal(final, peer), scan.hasBody && body === undefined);
      stripCredentials(scan.headers, d.pending!.kinds);
      if (expectsContinue && body === undefined) res.writeContinue();
      const ids = final.principals !== undefined ? authorizedIds(peer, final) : peer.ids;
      // A body read whole keeps its chunked trailer section (llhttp has it once the body ended), filtered as on every path.
      const trailers = body !== undefined && req.rawTrailers.length > 0 ? forwardableTrailers(req.rawTrailers) : undefined;
      forward(ctx, { peer, req, res, scan, decision: final, started, ids, body, trailers });
    }, () => {
      res.destroy();
      ctx.requestDone();
    });
  };
  if (!(d.pending!.hmac && scan.hasBody && headers['signature-input'] !== undefined)) return decideWith(undefined);
  if (expectsContinue) res.writeContinue();
  const max = ctx.gate.authenticator.maxBodyBytes;
  // llhttp (strict) accepted exactly one Content-Length of digits (one line: a string, credentialHeaders), or the
  // body is chunked (scanHttp1Request).
  const length = headers['content-length'];
  readBody(req, max, scan.chunked || length === undefined ? undefined : Number(typeof length === 'string' ? length : length[0]), {
    body: decideWith,
    tooLarge: () => {
      const reason = `the body is larger than credentials.hmac.maxBody (${max} bytes), so its signature cannot be checked`;
      ctx.gate.protocolError(peer, 413, reason, { method, path: d.target });
      sendHttp1(res, refusal(413, reason), grpc(), true);
      ctx.gate.done(peer, 'bad_request', d.rule, started, method, d.target, 413);
      ctx.requestDone();
    },
    failed: () => {
      res.destroy();
      ctx.requestDone();
    },
  });
}

/**
 * The app could not be reached or broke off: answer 502 (gRPC 14) while nothing was sent, otherwise cut
 * the response. True when it counts as an upstream error (the client still got an answer from us).
 */
function answerUpstreamFailure(ctx: ProxyContext, request: AllowedHttp1Request, err: Error): boolean {
  const { peer, req, res } = request;
  if (res.destroyed) return false;
  if (res.headersSent) {
    res.destroy();
    return false;
  }
  ctx.gate.upstreamError(peer, req.method!, request.decision.target, err);
  sendHttp1(res, unreachable(err), isGrpc(req.headers['content-type']), true);
  return true;
}

function forwardToHttp1(ctx: ProxyContext, request: AllowedHttp1Request): void {
  const { peer, req, res, scan, decision: d, started } = request;
  const headers = scan.headers;
  if (scan.host === undefined) headers.push('host', ctx.appAuthority);
  appendIdentity(headers, request.ids);
  const method = req.method!;
  let outcome: Outcome = d.wouldDeny ? 'audit_deny' : 'allow';
  const kind: BodyKind = scan.chunked ? 'chunked' : scan.hasBody ? 'length' : 'none';
  const onResponse = (upRes: UpstreamResponse): void => {
    if (res.destroyed) return;
    if (ctx.draining) res.shouldKeepAlive = false;
    res.writeHead(upRes.statusCode, upRes.statusMessage, http1ResponseHeaders(upRes.rawHeaders));
    if (upRes.body !== undefined) {
      res.end(upRes.body);
      return;
    }
    upRes.on('end', () => {
      const t = upRes.rawTrailers;
      if (t.length > 0) {
        const pairs: [string, string][] = [];
        for (let i = 0; i < t.length; i += 2) pairs.push([t[i]!, t[i + 1]!]);
        res.addTrailers(pairs);
      }
    });
    upRes.on('error', () => res.destroy());
    upRes.pipe(res);
  };
  const onError = (err: Error): void => {
    if (answerUpstreamFailure(ctx, request, err)) outcome = 'upstream_error';
  };
  const whole = request.body === undefined ? undefined : { body: request.body, trailers: kind === 'chunked' ? request.trailers ?? [] : [] };
  const exchange = ctx.http1App!.request(method, d.target, headers, kind, onResponse, onError, whole);
  res.on('close', () => {
    if (!res.writableFinished) exchange.abort();
    ctx.gate.done(peer, outcome, d.rule, started, method, d.target, res.statusCode, d);
    ctx.requestDone();
  });
  const body = exchange.body;
  if (body !== undefined) {
    // Only a body llhttp parsed to its end is ended towards the app: on some parse errors node ends the
    // request stream early, and forwarding that as a complete (shorter) request would be a smuggling gift.
    req.pipe(body, { end: false });
    req.on('end', () => {
      if (!req.complete) {
        exchange.abort();
        return;
      }
      // A chunked request's trailer section goes on to the app (identity and framing fields excepted).
      if (req.rawTrailers.length > 0) body.trailers = forwardableTrailers(req.rawTrailers);
      body.end();
    });
  }
}

function forwardToH2c(ctx: ProxyContext, request: AllowedHttp1Request): void {
  const { peer, req, res, scan, decision: d, started } = request;
  const method = req.method!;
  const headers = http1RequestToH2c(method, d.target, scan, ctx.appAuthority);
  setIdentity(headers, request.ids);
  let outcome: Outcome = d.wouldDeny ? 'audit_deny' : 'allow';
  const fail = (err: Error): void => {
    if (answerUpstreamFailure(ctx, request, err)) outcome = 'upstream_error';
  };
  let up: http2.ClientHttp2Stream;
  try {
    // A streamed body may end with a trailer section: the stream waits for it ('wantTrailers' below).
    up = ctx.h2cApp!.request(headers, !scan.hasBody, scan.hasBody && (request.body === undefined || request.trailers !== undefined));
  } catch (err) {
    fail(err as Error);
    res.on('close', () => {
      ctx.gate.done(peer, outcome, d.rule, started, method, d.target, res.statusCode);
      ctx.requestDone();
    });
    return;
  }
  up.on('response', (h) => {
    if (res.destroyed) return;
    if (ctx.draining) res.shouldKeepAlive = false;
    res.writeHead(Number(h[':status']), withoutPseudo(h));
    up.pipe(res);
  });
  up.on('trailers', (t) => {
    if (!res.destroyed) res.addTrailers(withoutPseudo(t));
  });
  up.on('error', fail);
  up.on('close', () => {
    if (res.writableFinished || res.destroyed) return;
    if (!res.headersSent) fail(new Error(`the app reset the stream (HTTP/2 error ${up.rstCode})`));
    else if (up.rstCode !== 0) res.destroy();
  });
  res.on('close', () => {
    if (!up.closed) up.close(NGHTTP2_CANCEL);
    ctx.gate.done(peer, outcome, d.rule, started, method, d.target, res.statusCode, d);
    ctx.requestDone();
  });
  if (request.body !== undefined) {
    const trailers = request.trailers;
    if (trailers !== undefined) up.once('wantTrailers', () => up.sendTrailers(trailerObject(trailers)));
    up.end(request.body);
  } else if (scan.hasBody) {
    // The chunked body's trailer section, filtered as for an http:// app (forwardableTrailers), follows it.
    up.once('wantTrailers', () => up.sendTrailers(trailerObject(forwardableTrailers(req.rawTrailers))));
    req.pipe(up, { end: false });
    req.on('end', () => {
      if (req.complete) up.end();
      else up.close(NGHTTP2_CANCEL); // a body cut short by a parse error is never passed on as complete
    });
  }
}

/** WebSocket and other upgrades: after the policy check, a byte tunnel to an http:// app. */
function onUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const started = performance.now();
  const peer = ctx.peers.get(socket);
  if (peer === undefined) {
    socket.destroy();
    return;
  }
  const method = req.method!;
  const lineProblem = requestLineProblem(req);
  const scan = scanHttp1Request(req.rawHeaders, true, false);
  const problem = lineProblem ?? scan.problem ?? (scan.host === undefined ? 'an HTTP/1.1 request must have a Host header' : undefined);
  if (problem !== undefined) {
    ctx.gate.protocolError(peer, 400, problem, { method, path: req.url?.slice(0, 200) });
    sendRawHttp1(socket, refusal(400, problem));
    return;
  }
  const d = ctx.gate.decide(peer, method, req.url!);
  if (!d.allow) {
    sendRawHttp1(socket, decisionRefusal(d, peer));
    ctx.gate.done(peer, outcomeOf(d), d.rule, started, method, d.target || req.url!, d.status);
    return;
  }
  if (d.pending === undefined) return tunnel(ctx, peer, req, socket, head, scan, d, peer.ids, started);
  whenSettled(ctx.gate.authenticate(peer, d, authRequest(ctx, peer, req, scan, credentialHeaders(req.rawHeaders, d.pending.hmac), undefined)), (final) => {
    if (!final.allow) {
      sendRawHttp1(socket, decisionRefusal(final, peer));
      ctx.gate.done(peer, outcomeOf(final), final.rule, started, method, final.target, final.status, final);
      return;
    }
    stripCredentials(scan.headers, d.pending!.kinds);
    tunnel(ctx, peer, req, socket, head, scan, final, final.principals !== undefined ? authorizedIds(peer, final) : peer.ids, started);
  }, () => socket.destroy());
}

/** The upgrade the policy allowed: a byte tunnel to the app after the rewritten request head. */
function tunnel(ctx: ProxyContext, peer: Peer, req: IncomingMessage, socket: Socket, head: Buffer, scan: Http1RequestScan, d: Decision, ids: IdentityHeaders, started: number): void {
  const method = req.method!;
  const app = ctx.http1App;
  if (app === undefined || ctx.draining) {
    const reason = app === undefined ? 'upgrades are passed through to http:// apps only' : 'the sidecar is shutting down';
    ctx.gate.protocolError(peer, app === undefined ? 501 : 503, reason, { method, path: d.target });
    sendRawHttp1(socket, refusal(app === undefined ? 501 : 503, reason));
    return;
  }
  const headers = scan.headers;
  appendIdentity(headers, ids);
  let text = `${method} ${d.target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  text += '\r\n';

  let outcome: Outcome = d.wouldDeny ? 'audit_deny' : 'allow';
  let connected = false;
  ctx.tunnels.add(socket);
  ctx.inflight++;
  const up = net.connect({ host: app.host, port: app.port, noDelay: true });
  up.write(text, 'latin1'); // header bytes as the client sent them (node decoded them as latin1)
  if (head.length > 0) up.write(head);
  up.once('connect', () => {
    connected = true;
    up.pipe(socket);
    socket.pipe(up);
  });
  up.on('error', (err) => {
    if (connected) {
      socket.destroy();
      return;
    }
    outcome = 'upstream_error';
    ctx.gate.upstreamError(peer, method, d.target, err);
    sendRawHttp1(socket, unreachable(err));
  });
  up.on('close', () => {
    if (connected) socket.destroy();
  });
  socket.on('error', () => up.destroy());
  socket.on('close', () => {
    up.destroy();
    ctx.tunnels.delete(socket);
    ctx.gate.done(peer, outcome, d.rule, started, method, d.target, outcome === 'upstream_error' ? 502 : 101);
    ctx.requestDone();
  });
}
