// Test helpers for driving the real `meshward sidecar` binary: write a config, start the child
// process, find its admin and inbound ports from its JSON log, poll /readyz and /metrics, stop it with
// a signal; plus tiny apps to put behind it (an HTTP echo of the headers it received, a TCP echo).
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { Agent as HttpAgent, IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer, Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MESHWARD_BIN } from './cli.js';
import { closeHttpServer, listenOnLoopback } from './ports.js';
import type { LogLine } from './json-log.js';
import { waitFor } from './poll.js';
import { spawnMeshward, type LoggedProcess, type SpawnOptions } from './process.js';
import { tempDir } from './temp-dir.js';
import { makeTestPki, writeIdentityDir } from './pki-fixtures.js';
import type { TestLeaf, TestPki } from './pki-fixtures.js';
import type { KeyType } from '../../src/pki/keys.js';

/** Writes `config` as YAML to dir/sidecar.yaml and returns the path. */
export function writeSidecarConfig(dir: string, config: object, name = 'sidecar.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, stringify(config));
  return path;
}

export interface SidecarProcess extends LoggedProcess {
  /** http://127.0.0.1:PORT of the admin server. */
  adminUrl: string;
  /** The inbound listener's port, once it is up (see waitForInbound). */
  inboundPort?: number;
  waitForInbound(timeoutMs?: number): Promise<number>;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  readyz(): Promise<{ status: number; body: { ready: boolean; reason?: string } }>;
  metrics(): Promise<string>;
}

/** Plain-HTTP GET (the admin server; an app calling its sidecar's outbound listener, through `agent`). */
export function httpGet(url: string, timeoutMs = 5000, agent: HttpAgent | false = false): Promise<{ status: number; body: string; headers: IncomingHttpHeaders; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: timeoutMs, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers, reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Starts `node bin/meshward.js sidecar --config path` and waits until its admin server listens. */
export async function startSidecarProcess(configPath: string, opts: SpawnOptions & { /** More command-line flags. */ args?: string[] } = {}): Promise<SidecarProcess> {
  const base = spawnMeshward(['sidecar', '--config', configPath, ...(opts.args ?? [])], opts);
  let admin: LogLine;
  try {
    admin = await base.waitForLog((l) => l.event === 'admin_listening', 'the admin server');
  } catch (err) {
    base.child.kill('SIGKILL');
    throw err;
  }
  const proc: SidecarProcess = {
    ...base,
    adminUrl: `http://${String(admin.address)}`,
    async waitForInbound(timeoutMs) {
      const l = await base.waitForLog((x) => x.event === 'inbound_listening', 'the inbound listener', timeoutMs);
      proc.inboundPort = Number(String(l.address).split(':').pop());
      return proc.inboundPort;
    },
    async waitUntilReady(timeoutMs = 20_000) {
      await waitFor('/readyz 200', async () => (await proc.readyz()).status === 200, { timeoutMs });
    },
    async readyz() {
      const r = await httpGet(`${proc.adminUrl}/readyz`);
      return { status: r.status, body: JSON.parse(r.body) as { ready: boolean; reason?: string } };
    },
    async metrics() {
      return (await httpGet(`${proc.adminUrl}/metrics`)).body;
    },
  };
  return proc;
}

/** Runs the sidecar expecting it to exit by itself (e.g. a config error); returns code and stderr. */
export function runSidecarToExit(configPath: string, timeoutMs = 20_000): Promise<{ code: number | string; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MESHWARD_BIN, 'sidecar', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sidecar did not exit within ${timeoutMs} ms; stdout: ${stdout}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stderr, stdout });
    });
  });
}

/**
 * Value of one sample in Prometheus text: `metricValue(text, 'meshward_handshake_failures_total', {reason: 'expired'})`.
 * Returns 0 when the series is absent (a counter never incremented).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[pair[1]!] = pair[2]!.replace(/\\(.)/g, '$1');
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

export interface EchoHttpApp {
  server: HttpServer;
  url: string;
  port: number;
  /** Requests seen so far: method, url and headers. */
  seen: { method: string; url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 app that answers every request with JSON {method, url, headers} (what it received).
 * `/slow?ms=N` waits N ms before answering (for drain tests).
 */
export async function startEchoHttpApp(): Promise<EchoHttpApp> {
  const seen: EchoHttpApp['seen'] = [];
  const server = createHttpServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    seen.push(entry);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ms = /^\/slow\?ms=(\d+)/.exec(entry.url);
      const answer = () => {
        const body = JSON.stringify({ ...entry, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      };
      if (ms) setTimeout(answer, Number(ms[1]));
      else answer();
    });
  });
  const port = await listenOnLoopback(server);
  return { server, port, url: `http://127.0.0.1:${port}`, seen, close: () => closeHttpServer(server) };
}

export interface TcpEchoApp {
  server: TcpServer;
  port: number;
  /** Connections the app accepted (a refused caller never gets here). */
  accepted: number;
  close(): Promise<void>;
}

/** A TCP app echoing every byte back; when the peer half-closes it echoes what is left, then ends too. */
export async function startTcpEchoApp(): Promise<TcpEchoApp> {
  const sockets = new Set<Socket>();
  const app: TcpEchoApp = {
    server: createTcpServer({ allowHalfOpen: true }, (socket) => {
      app.accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    }),
    port: 0,
    accepted: 0,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        app.server.close(() => r());
      }),
  };
  app.port = await listenOnLoopback(app.server);
  return app;
}

// ---------------------------------------------------------------------------------------------------
// A whole scenario: a test PKI, the sidecar's identity directory, an app, a policy and a config.

export const SERVER_ID = 'spiffe://example.org/ns/shop/sa/orders';
export const FRONTEND_ID = 'spiffe://example.org/ns/shop/sa/frontend';
export const STRANGER_ID = 'spiffe://example.org/ns/other/sa/stranger';

/** The policy most scenarios use: frontend may read/write orders and connect to tcp apps. */
export const DEFAULT_POLICY = {
  mode: 'enforce',
  grants: [
    { identities: [FRONTEND_ID], scopes: ['orders:read', 'orders:write', 'redis:connect'] },
    { subjects: [{ cn: 'legacy-batch', ou: 'payments' }], scopes: ['orders:read'] },
  ],
  routes: [
    { match: { methods: ['GET', 'HEAD'], path: '/orders/**' }, scope: 'orders:read' },
    { match: { methods: ['POST'], path: '/orders' }, scope: 'orders:write' },
    { match: { path: '/slow' }, scope: 'orders:read' },
    { match: { path: '/healthz' }, public: true },
  ],
  tcp: { scope: 'redis:connect' },
};

/** A server leaf for the sidecar: its SPIFFE ID plus localhost / 127.0.0.1 so clients can verify it. */
export function serverLeaf(pki: TestPki, opts: { notAfter?: Date } = {}): TestLeaf {
  return pki.leaf({ spiffeId: SERVER_ID, dns: ['localhost'], ips: ['127.0.0.1'], ...opts });
}

export interface ClientFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface Scenario {
  tmp: string;
  pki: TestPki;
  identityDir: string;
  configPath: string;
  policyPath: string;
  server: TestLeaf;
  /** Writes a client's chain and key (and the bundle) to files for curl/openssl. */
  clientFiles(leaf: TestLeaf, name: string): ClientFiles;
  cleanup(): void;
}

export interface ScenarioOptions {
  app: string;
  policy?: object;
  /** false: leave identity.dir empty (an agent writes it later). */
  writeIdentity?: boolean;
  crlPem?: string;
  config?: Record<string, unknown>;
  layout?: 'plain' | 'kubernetes';
  /** Key type of every certificate of the scenario's PKI (default ec-p256). */
  keyType?: KeyType;
}

export function makeScenario(opts: ScenarioOptions): Scenario {
  const { dir: tmp, cleanup } = tempDir();
  const pki = makeTestPki(opts.keyType ? { keyType: opts.keyType } : {});
  const identityDir = join(tmp, 'identity');
  const server = serverLeaf(pki);
  mkdirSync(identityDir, { recursive: true });
  if (opts.writeIdentity !== false) {
    if (opts.layout === 'kubernetes') writeKubernetesIdentity(identityDir, server, pki, opts.crlPem);
    else writeIdentityDir(identityDir, server, pki, opts.crlPem);
  }
  const policyPath = join(tmp, 'policy.yaml');
  writeFileSync(policyPath, stringify(opts.policy ?? DEFAULT_POLICY));
  const configPath = writeSidecarConfig(tmp, {
    identity: { dir: './identity' },
    inbound: { listen: '127.0.0.1:0', app: opts.app },
    policy: './policy.yaml',
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'debug', allowed: 'info' },
    ...opts.config,
  });
  return {
    tmp,
    pki,
    identityDir,
    configPath,
    policyPath,
    server,
    clientFiles(leaf, name) {
      const files = { cert: join(tmp, `${name}.crt`), key: join(tmp, `${name}.key`), ca: join(tmp, 'bundle.crt') };
      writeFileSync(files.cert, leaf.chainPem);
      writeFileSync(files.key, leaf.keyPem, { mode: 0o600 });
      writeFileSync(files.ca, pki.bundlePem);
      return files;
    },
    cleanup,
  };
}

let generation = 0;

/**
 * Writes credentials the way Kubernetes updates a Secret volume: files in a fresh `..<timestamp>` folder,
 * a new `..data_tmp` symlink to it renamed over `..data` (one atomic swap), and `tls.crt` etc. as
 * symlinks to `..data/<name>` (created once).
 */
export function writeKubernetesIdentity(dir: string, leaf: TestLeaf, bundle: string | TestPki, crlPem?: string): void {
  const version = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${process.pid}.${generation++}`;
  writeIdentityDir(join(dir, version), leaf, bundle, crlPem);
  const tmpLink = join(dir, '..data_tmp');
  rmSync(tmpLink, { force: true });
  symlinkSync(version, tmpLink);
  renameSync(tmpLink, join(dir, '..data'));
  for (const name of ['tls.crt', 'tls.key', 'ca.crt', ...(crlPem !== undefined ? ['crl.pem'] : [])]) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** TLS client options for a caller presenting `leaf` (or no certificate) to the sidecar. */
export function clientTlsOptions(pki: TestPki, leaf: TestLeaf | undefined, port: number, extra: ConnectionOptions = {}): ConnectionOptions {
  return {
    host: '127.0.0.1',
    port,
    ca: pki.bundlePem,
    servername: 'localhost',
    ...(leaf ? { cert: leaf.chainPem, key: leaf.keyPem } : {}),
    ...extra,
  };
}

/**
 * Writes `bytes` (a request as raw bytes, hostile ones included) on a new TLS connection and resolves with
 * what came back (latin1, byte for byte) once a whole response head arrived or the connection closed.
 */
export async function exchangeHead(options: ConnectionOptions, bytes: Buffer): Promise<string> {
  const socket = await tlsOpen(options);
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.write(bytes);
  });
}

/** Opens a TLS connection; resolves once connected (the server may still refuse right after, under TLS 1.3). */
export function tlsOpen(options: ConnectionOptions, timeoutMs = 10_000): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(options);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('TLS connect timed out'));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}

/**
 * Connects, sends `payload`, half-closes, and collects what comes back until the server ends the stream.
 * 'refused' when the handshake fails or the connection is closed without the echo.
 */
export async function tcpRoundTrip(options: ConnectionOptions, payload: string, timeoutMs = 10_000): Promise<{ result: 'echoed' | 'refused'; received: string; socket?: TLSSocket }> {
  let socket: TLSSocket;
  try {
    socket = await tlsOpen(options, timeoutMs);
  } catch {
    return { result: 'refused', received: '' };
  }
  return new Promise((resolve) => {
    let received = '';
    let settled = false;
    const finish = (result: 'echoed' | 'refused') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ result, received });
    };
    const timer = setTimeout(() => finish('refused'), timeoutMs);
    socket.on('data', (c: Buffer) => (received += c.toString()));
    socket.on('end', () => finish(received === payload ? 'echoed' : 'refused'));
    socket.on('error', () => finish('refused'));
    socket.on('close', () => finish(received === payload ? 'echoed' : 'refused'));
    socket.write(payload, () => socket.end());
  });
}

/** The serial (lowercase hex, as ParsedCertificate.serialHex) of the certificate the sidecar presents now. */
export async function presentedSerial(options: ConnectionOptions): Promise<string> {
  const socket = await tlsOpen(options);
  try {
    return socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^(00)+/, '');
  } finally {
    socket.destroy();
  }
}

/** Writes `data` and resolves with the next chunk the peer sends back (the TCP echo app answers at once). */
export function exchange(socket: TLSSocket, data: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo')), timeoutMs);
    socket.once('data', (c: Buffer) => {
      clearTimeout(timer);
      resolve(c.toString());
    });
    socket.once('error', reject);
    socket.write(data);
  });
}
