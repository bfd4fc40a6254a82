// Outbound HTTP/1.1: requests from the app are sent to the upstream sidecar over a pool of keep-alive
// mTLS connections (one https.Agent per credential set, so a certificate rotation never mixes old and
// new client certificates in one pool). Bodies are streamed both ways.
import { Agent, request } from 'node:https';
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import type { Credentials } from '../tls/credentials.js';
import { describeUpstreamError } from './upstream-tls.js';

export interface UpstreamDeps {
  credentials: () => Credentials | undefined;
  tlsFor: (creds: Credentials, alpn: string[]) => ConnectionOptions;
  upstreamName: string;
  onError: (err: Error) => void;
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

export function badGateway(res: ServerResponse, reason: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: 'bad_gateway', reason });
  res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

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
    const creds = this.deps.credentials();
    if (!creds) {
      badGateway(res, 'the sidecar has no certificate yet (waiting for credentials)');
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
    upstream.on('response', (ures) => {
      const headers = forwardableHeaders(ures.rawHeaders);
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, headers);
      ures.pipe(res);
      ures.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.destroyed) return; // the app went away first: that is not an upstream failure
      this.deps.onError(err);
      badGateway(res, describeUpstreamError(err, this.deps.upstreamName));
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
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
    // Idle pooled sockets close after 30 s, half the upstream sidecar's default idle timeout (60 s), so a
    // pooled socket is not reused at the moment the upstream closes it.
    this.agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo', timeout: 30_000 });
    this.agentCredentials = creds;
    return this.agent;
  }
}
