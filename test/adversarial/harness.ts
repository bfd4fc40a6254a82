// Shared pieces of the adversarial suite: a real `meshward sidecar` child process in front of a small
// HTTP/1.1 app (the echo app plus /orders/big, a large streamed answer that respects backpressure), the
// granted client's TLS options, one legitimate HTTPS request (the "still serving" proof every case ends
// with), raw TLS sockets for hand-made bytes, and the child's resident memory from /proc.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import http2 from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { DEFAULT_POLICY, FRONTEND_ID, makeScenario, startSidecarProcess, type Scenario, type SidecarProcess } from '../support/sidecar.js';
import type { TestLeaf } from '../support/pki-fixtures.js';
import { after, before } from 'node:test';
import { closeHttpServer, listenOnLoopback } from '../support/ports.js';

export { FRONTEND_ID };

export interface ClientTls {
  key: string;
  cert: string;
  ca: string;
  servername: string;
}

export interface BigApp {
  url: string;
  /** Bytes the app managed to hand to its socket for /orders/big requests so far. */
  bigBytesWritten(): number;
  close(): Promise<void>;
}

/** 256 MiB: far more than any socket buffer, so a sidecar that buffered it would show in its RSS. */
export const BIG_BODY_BYTES = 256 * 1024 * 1024;

/** An app answering /orders/big with BIG_BODY_BYTES streamed under backpressure, and JSON for the rest. */
export async function startBigApp(): Promise<BigApp> {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server: Server = createServer((req, res) => {
    if (req.url === '/orders/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG_BODY_BYTES) });
      let sent = 0;
      const pump = (): void => {
        while (sent < BIG_BODY_BYTES) {
          sent += chunk.length;
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
      return;
    }
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, id: req.headers['x-mesh-client-id'] })));
  });
  const port = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}`, bigBytesWritten: () => written, close: () => closeHttpServer(server) };
}

export interface Rig {
  scenario: Scenario;
  sidecar: SidecarProcess;
  port: number;
  app: BigApp;
  frontend: TestLeaf;
  /** TLS options of the granted client (frontend). */
  client: ClientTls;
  close(): Promise<void>;
}

/** A sidecar child process with the default policy in front of the big app; `limits` go into the config. */
export async function startRig(limits: Record<string, unknown>, extra: { policy?: object } = {}): Promise<Rig> {
  const app = await startBigApp();
  const scenario = makeScenario({ app: app.url, policy: extra.policy ?? DEFAULT_POLICY, config: { limits, log: { level: 'info', allowed: 'silent' } } });
  let sidecar: SidecarProcess | undefined;
  try {
    sidecar = await startSidecarProcess(scenario.configPath);
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const frontend = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    const started = sidecar;
    return {
      scenario,
      sidecar: started,
      port,
      app,
      frontend,
      client: { key: frontend.keyPem, cert: frontend.chainPem, ca: scenario.pki.bundlePem, servername: 'localhost' },
      async close() {
        await started.stop('SIGKILL');
        await app.close();
        scenario.cleanup();
      },
    };
  } catch (err) {
    if (sidecar) await sidecar.stop('SIGKILL');
    await app.close();
    scenario.cleanup();
    throw err;
  }
}

/**
 * startRig as before/after hooks of the current file or describe: the returned Rig is filled in once
 * `before` ran, and closed in `after`.
 */
export function useRig(limits: Record<string, unknown>, extra: { policy?: object } = {}): Rig {
  const rig = {} as Rig;
  before(async () => {
    Object.assign(rig, await startRig(limits, extra));
  });
  after(async () => {
    await rig.close?.();
  });
  return rig;
}

/** One HTTPS GET with the given client certificate over a fresh connection: status and body. */
export function httpsGet(port: number, client: ClientTls, path: string, timeoutMs = 15_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ...client, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 GET over a fresh session (the proof that HTTP/2 is still served). */
export function h2Get(port: number, client: ClientTls, path: string, timeoutMs = 15_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ...client });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`HTTP/2 GET ${path} timed out`));
    }, timeoutMs);
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const s = session.request({ ':path': path });
    s.on('response', (h) => {
      s.resume();
      s.on('end', () => {
        clearTimeout(timer);
        session.close();
        resolve(Number(h[':status']));
      });
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    });
    s.end();
  });
}

/** A TLS connection with the client certificate and the given ALPN, resolved once the handshake is done. */
export function tlsConnect(port: number, client: ClientTls, alpn: string[]): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...client, ALPNProtocols: alpn }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves true when the socket closes within timeoutMs, false otherwise (the socket is left as it is). */
export function closesWithin(socket: Socket, timeoutMs: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Resident memory of a process in KiB (VmRSS in /proc/PID/status). */
export function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** CPU time (user + system) a process used so far, in clock ticks (utime + stime in /proc/PID/stat). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}


/** What a process used so far, to compare after an attack with assertBounded. */
export function usage(pid: number): { pid: number; rssKb: number; cpu: number } {
  return { pid, rssKb: vmRssKb(pid), cpu: cpuTicks(pid) };
}

/** The process grew by less than 128 MiB of RSS and used less than 30 s of CPU since `before`. */
export function assertBounded(before: { pid: number; rssKb: number; cpu: number }, what: string): void {
  const rss = vmRssKb(before.pid);
  const cpu = cpuTicks(before.pid) - before.cpu;
  assert.ok(rss - before.rssKb < 128 * 1024, `${what}: RSS grew from ${before.rssKb} to ${rss} KiB`);
  assert.ok(cpu < 30 * 100, `${what}: the sidecar used ${cpu / 100} s of CPU`);
}
