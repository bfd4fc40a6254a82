// Outbound HTTP/1.1: requests from the app are sent to the upstream sidecar over a pool of keep-alive
// mTLS connections (one https.Agent per credential set, so a certificate rotation never mixes old and
// new client certificates in one pool). Bodies are streamed both ways.
import { Agent, request } from 'node:https';
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Credentials } from '../tls/credentials.js';
import { UpstreamTimeout, classifyUpstreamError, describeUpstreamError, limitConnectTime } from './upstream-tls.js';

export interface UpstreamDeps {
  credentials: () => Credentials | undefined;
  tlsFor: (creds: Credentials, alpn: string[]) => ConnectionOptions;
  upstreamName: string;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Logs and counts an upstream failure. */
  onError: (err: Error) => void;
  /** Counts a request the app sent; the returned function is called once it ended (latency). */
  started: () => () => void;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are about the app's connection to us, not ours to the upstream.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'proxy-authorization']);

export function forwardableHeaders(raw: string[]): OutgoingHttpHeaders {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? raw[i + 1]! : Array.isArray(prev) ? [...prev, raw[i + 1]!] : [String(prev), raw[i + 1]!];
  }
  return out;
}

/** Answers the app 502 (or 504 for an upstream timeout) with the reason, or cuts a response already started. */
export function badGateway(res: ServerResponse, reason: string, status: 502 | 504 = 502): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** What a request gets before the first credentials are loaded (counted as no_credentials). */
export const NO_CREDENTIALS = Object.assign(new Error('the sidecar has no certificate yet (waiting for credentials)'), { code: 'ERR_MESHWARD_NO_CREDENTIALS' });

/** Requests already running on a retired pool finish; its idle sockets close now. */
function closeIdle(agent: Agent): void {
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
  // Sockets still busy are not returned to the pool once they finish.
  agent.maxFreeSockets = 0;
}

export class Http1Upstream {
  private agent?: Agent;
  private agentCredentials?: Credentials;

  constructor(private readonly deps: UpstreamDeps) {}

  forward(req: IncomingMessage, res: ServerResponse): void {
    res.once('close', this.deps.started());
    const creds = this.deps.credentials();
    if (!creds) {
      this.deps.onError(NO_CREDENTIALS);
      badGateway(res, NO_CREDENTIALS.message);
      return;
    }
    const headers = forwardableHeaders(req.rawHeaders);
    // Transfer-Encoding is hop-by-hop, but the body it framed is not: Node does not chunk GET, DELETE and
    // friends by default, and an unframed body on a pooled connection would be read as the next request.
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    const upstream = request({
      ...this.deps.tlsFor(creds, ['http/1.1']),
      agent: this.agentFor(creds),
      method: req.method,
      path: req.url,
      headers,
    });
    const { upstreamName, connectTimeoutMs, idleTimeoutMs } = this.deps;
    upstream.on('socket', (socket) => limitConnectTime(socket, upstreamName, connectTimeoutMs, (err) => upstream.destroy(err)));
    upstream.setTimeout(idleTimeoutMs, () => upstream.destroy(new UpstreamTimeout('idle', upstreamName, idleTimeoutMs)));
    upstream.on('response', (ures) => {
      const headers = forwardableHeaders(ures.rawHeaders);
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, headers);
      ures.pipe(res);
      ures.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.destroyed) return; // the app went away first: that is not an upstream failure
      this.deps.onError(err);
      badGateway(res, describeUpstreamError(err, this.deps.upstreamName), classifyUpstreamError(err).status);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /**
   * An Upgrade request (WebSocket): sent upstream with its Connection/Upgrade headers; a 101 answer
   * becomes a byte tunnel between the app's socket and a dedicated mTLS connection (never pooled).
   * Any other answer is passed back and the app's connection closed.
   */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    socket.once('close', this.deps.started());
    const { upstreamName, connectTimeoutMs } = this.deps;
    const creds = this.deps.credentials();
    const refuse = (err: Error): void => {
      this.deps.onError(err);
      const { status } = classifyUpstreamError(err);
      const body = JSON.stringify({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason: describeUpstreamError(err, upstreamName) });
      socket.end(`HTTP/1.1 ${status} ${status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (!creds) return refuse(NO_CREDENTIALS);
    const headers = forwardableHeaders(req.rawHeaders);
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade!;
    const upstream = request({ ...this.deps.tlsFor(creds, ['http/1.1']), agent: false, method: req.method, path: req.url, headers });
    upstream.on('socket', (s) => limitConnectTime(s, upstreamName, connectTimeoutMs, (err) => upstream.destroy(err)));
    upstream.on('upgrade', (ures, upSocket, upHead) => {
      let head101 = `HTTP/1.1 101 ${ures.statusMessage || 'Switching Protocols'}\r\n`;
      for (let i = 0; i < ures.rawHeaders.length; i += 2) head101 += `${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}\r\n`;
      socket.write(`${head101}\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.on('error', () => socket.destroy());
      socket.on('close', () => upSocket.destroy());
      upSocket.on('close', () => socket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    upstream.on('response', (ures) => {
      // The upstream declined the upgrade: pass its answer on and close (the app expected a tunnel).
      let text = `HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\n`;
      const h = forwardableHeaders(ures.rawHeaders);
      for (const [k, v] of Object.entries(h)) for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${String(one)}\r\n`;
      socket.write(`${text}connection: close\r\n\r\n`);
      ures.pipe(socket);
    });
    upstream.on('error', (err) => {
      if (!socket.destroyed) refuse(err);
    });
    upstream.end();
  }

  /** Stops handing out pooled connections made with the old credentials; idle ones close now. */
  retire(): void {
    if (this.agent) closeIdle(this.agent);
    this.agent = undefined;
    this.agentCredentials = undefined;
  }

  private agentFor(creds: Credentials): Agent {
    if (this.agent && this.agentCredentials === creds) return this.agent;
    if (this.agent) closeIdle(this.agent);
    // Idle pooled sockets close after idleTimeout (default 30 s, half the upstream sidecar's default idle
    // timeout of 60 s), so a pooled socket is not reused at the moment the upstream closes it.
    this.agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo', timeout: this.deps.idleTimeoutMs });
    this.agentCredentials = creds;
    return this.agent;
  }
}
