// Test harness for the HTTP frontend: a real tls.Server (client certificate requested, verified by
// OpenSSL against the test PKI's bundle) that hands each verified socket to HttpFrontend.accept with a
// Connection built the way the sidecar builds it, plus small apps (HTTP/1.1 recorder with streaming
// and an upgrade echo) and real-client helpers (curl, raw TLS bytes, an HTTP/2 POST with trailers).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { after, before } from 'node:test';
import { pino } from 'pino';
import { parseCertificate } from '../../../src/pki/certificate.js';
import type { Connection } from '../../../src/sidecar/inbound/connection.js';
import { identityFromCertificate, xfccValue } from '../../../src/sidecar/tls/identity.js';
import { SidecarMetrics } from '../../../src/sidecar/observe/metrics.js';
import { parsePolicy, type Policy } from '../../../src/sidecar/policy/policy.js';
import { HttpFrontend, type HttpFrontendOptions } from '../../../src/sidecar/http/frontend.js';
import { closeHttpServer, listenOnLoopback } from '../../support/ports.js';
import { tempDir } from '../../support/temp-dir.js';
import { makeTestPki, TD, writeIdentityDir, type LeafOptions, type TestLeaf, type TestPki } from '../../support/pki-fixtures.js';

export const FRONTEND_ID = `spiffe://${TD}/ns/shop/sa/frontend`;
export const BILLING_ID = `spiffe://${TD}/ns/billing/sa/invoices`;
export const BATCH_ID = `spiffe://${TD}/ns/batch/sa/nightly`;

/** The policy most tests use: frontend reads and writes orders, billing only reads, batch is rate limited. */
export const SHOP_POLICY = `
mode: enforce
grants:
  - identities: ["${FRONTEND_ID}"]
    scopes: [orders:read, orders:write]
  - identities: ["spiffe://${TD}/ns/billing/**"]
    scopes: [orders:read]
  - identities: ["spiffe://${TD}/ns/batch/**"]
    scopes: [orders:read]
  - identities: ["spiffe://${TD}/ns/ops/sa/admin"]
    scopes: [admin]
routes:
  - match: {methods: [GET, HEAD], path: /orders}
    scope: orders:read
  - match: {methods: [GET, HEAD], path: /orders/**}
    scope: orders:read
  - match: {methods: [POST, PUT], path: /orders}
    scope: orders:write
  - match: {methods: [POST, PUT], path: /orders/**}
    scope: orders:write
  - match: {path: /admin}
    scope: admin
  - match: {path: /admin/**}
    scope: admin
  - match: {path: /shop.v1.Orders/Get}
    scope: orders:read
  - match: {path: /shop.v1.Orders/Cancel}
    scope: orders:write
  - match: {path: /ws}
    scope: orders:read
  - match: {path: /healthz}
    public: true
limits:
  - identities: ["spiffe://${TD}/ns/batch/**"]
    rps: 0.001
    burst: 3
`;

export interface ClientFiles {
  leaf: TestLeaf;
  cert: string;
  key: string;
  ca: string;
  /** For node clients. */
  tls: { key: string; cert: string; ca: string };
}

export interface Harness {
  port: number;
  url: string;
  pki: TestPki;
  frontend: HttpFrontend;
  metrics: SidecarMetrics;
  logs: Record<string, unknown>[];
  clients: Record<string, ClientFiles>;
  setPolicy(text: string): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  app: string;
  policy?: string;
  clients?: Record<string, LeafOptions>;
  frontend?: Partial<HttpFrontendOptions>;
}

const DEFAULT_CLIENTS: Record<string, LeafOptions> = {
  frontend: { spiffeId: FRONTEND_ID },
  billing: { spiffeId: BILLING_ID },
  batch: { spiffeId: BATCH_ID },
};

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const { dir, cleanup } = tempDir();
  const pki = makeTestPki({ trustDomain: TD });
  const serverLeaf = pki.leaf({ spiffeId: `spiffe://${TD}/ns/shop/sa/orders`, dns: ['localhost'], ips: ['127.0.0.1'] });
  const clients: Record<string, ClientFiles> = {};
  for (const [name, leafOpts] of Object.entries(opts.clients ?? DEFAULT_CLIENTS)) {
    const leaf = pki.leaf(leafOpts);
    const d = path.join(dir, name);
    writeIdentityDir(d, leaf, pki);
    clients[name] = {
      leaf,
      cert: path.join(d, 'tls.crt'),
      key: path.join(d, 'tls.key'),
      ca: path.join(d, 'ca.crt'),
      tls: { key: leaf.keyPem, cert: leaf.chainPem, ca: pki.bundlePem },
    };
  }
  let policy: Policy = parsePolicy(opts.policy ?? SHOP_POLICY, 'policy.yaml');
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  const metrics = new SidecarMetrics({ processMetrics: false });
  const frontend = new HttpFrontend({
    app: new URL(opts.app),
    policy: () => policy,
    logger,
    metrics,
    allowedLogLevel: 'debug',
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    idleTimeoutMs: 30_000,
    maxHeaderSize: 16 * 1024,
    ...opts.frontend,
  });
  let nextId = 1;
  const server = tls.createServer({
    key: serverLeaf.keyPem,
    cert: serverLeaf.chainPem,
    ca: pki.bundlePem,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const peer = socket.getPeerCertificate(true);
    if (!socket.authorized || peer.raw === undefined) {
      socket.destroy();
      return;
    }
    const identity = identityFromCertificate(parseCertificate(peer.raw));
    const conn: Connection = {
      id: nextId++,
      remoteAddress: socket.remoteAddress ?? '',
      identity,
      principal: policy.principal(identity),
      policy,
      xfcc: xfccValue(identity, serverLeaf.spiffeId ?? ''),
    };
    frontend.accept(socket, conn);
  });
  server.on('tlsClientError', () => {});
  const port = await listenOnLoopback(server);
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    pki,
    frontend,
    metrics,
    logs,
    clients,
    setPolicy(text: string) {
      policy = parsePolicy(text, 'policy.yaml');
    },
    async close() {
      frontend.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      cleanup();
    },
  };
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
}

export interface RecordingApp {
  url: string;
  seen: Seen[];
  /** Requests whose path contains /held wait here until releaseHeld(). */
  held: number;
  releaseHeld(): void;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 app: answers JSON {method, url, headers, bytes} (it counts the body, never keeps it);
 * `/orders/download?bytes=N` streams N bytes; an Upgrade to "echo" gets 101 and then echoes bytes.
 */
export async function startRecordingApp(): Promise<RecordingApp> {
  const seen: Seen[] = [];
  let waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 };
    seen.push(entry);
    if (entry.url.includes('/held')) {
      req.resume();
      waiting.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('released'));
      return;
    }
    const download = /[?&]bytes=(\d+)/.exec(entry.url);
    if (download !== null && entry.url.includes('/download')) {
      let left = Number(download[1]);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    req.on('data', (c: Buffer) => {
      entry.bytes += c.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'recording' });
      res.end(JSON.stringify(entry));
    });
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 });
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.pipe(socket);
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    get held() {
      return waiting.length;
    },
    releaseHeld() {
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    },
    close: () => closeHttpServer(server),
  };
}

export interface CurlResult {
  status: number;
  body: string;
  headers: string;
}

/** Runs curl with the client's certificate; returns the final status, body and response headers. */
export function curl(h: Harness, client: string, args: string[]): Promise<CurlResult> {
  const c = h.clients[client]!;
  const tmp = tempDir();
  const headerFile = tmp.path('headers');
  const full = ['-sS', '--max-time', '30', '--cert', c.cert, '--key', c.key, '--cacert', c.ca, '-D', headerFile, '-w', '\n%{http_code}', ...args];
  return new Promise((resolve, reject) => {
    execFile('curl', full, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      let headers = '';
      try {
        headers = readFileSync(headerFile, 'utf8');
      } catch {
        // curl failed before any response
      }
      tmp.cleanup();
      if (err) {
        reject(new Error(`curl ${args.join(' ')} failed: ${stderr || err.message}`));
        return;
      }
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut), headers });
    });
  });
}

/**
 * Sends exact bytes over a TLS connection with the client's certificate (ALPN http/1.1) and returns
 * everything the sidecar answered until it closed the connection (bounded by 10 s).
 */
export function rawExchange(h: Harness, client: string, bytes: string | Buffer): Promise<string> {
  const c = h.clients[client]!;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: '127.0.0.1', port: h.port, ...c.tls, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(bytes);
    });
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err) => {
      if (chunks.length === 0) reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** The status code of the first response in a raw HTTP/1.1 answer (0 when there is none). */
export function firstStatus(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m === null ? 0 : Number(m[1]);
}

/** Sum of a counter in the registry for the given labels. */
export async function counterValue(metrics: SidecarMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.get(name);
  if (metric === undefined) return 0;
  const data = await metric.snapshot();
  let sum = 0;
  for (const v of data.series) {
    if (Object.entries(labels).every(([k, want]) => v.labels[k] === want)) sum += v.value;
  }
  return sum;
}

/** The body of the first response in a raw HTTP/1.1 answer, de-chunked when it is chunked. */
export function rawBody(raw: string): string {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  let rest = raw.slice(split + 4);
  if (!/\r\ntransfer-encoding: chunked/i.test(head)) return rest;
  let body = '';
  for (let guard = 0; guard < 10_000; guard++) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) break;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
  return body;
}

/**
 * The setup most frontend tests share: in `before`, a recording app and the harness in front of it; in
 * `after`, held requests released and both closed. Call it inside a describe; read rig.app and rig.h in
 * the tests (they are set once `before` ran).
 */
export function useRecordingHarness(opts: Omit<HarnessOptions, 'app'> = {}): { readonly app: RecordingApp; readonly h: Harness } {
  const rig = {} as { app: RecordingApp; h: Harness };
  before(async () => {
    rig.app = await startRecordingApp();
    rig.h = await startHarness({ ...opts, app: rig.app.url });
  });
  after(async () => {
    rig.app?.releaseHeld();
    await rig.h?.close();
    await rig.app?.close();
  });
  return rig;
}

/** An HTTP/2 POST of "hello world" to /orders as the frontend client, followed by `trailers`; resolves with the status. */
export function http2PostWithTrailers(h: Harness, trailers: Record<string, string>): Promise<number> {
  const session = http2.connect(h.url, { ...h.clients.frontend!.tls, servername: 'localhost' });
  session.on('error', () => {});
  return new Promise<number>((resolve, reject) => {
    const s = session.request({ ':path': '/orders', ':method': 'POST', te: 'trailers' }, { waitForTrailers: true });
    s.once('wantTrailers', () => s.sendTrailers(trailers));
    let status = 0;
    s.on('response', (hd) => { status = Number(hd[':status']); });
    s.on('error', reject);
    s.on('close', () => resolve(status));
    s.resume();
    s.end('hello world');
  }).finally(() => session.close());
}
