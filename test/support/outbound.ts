// Helpers for outbound tests: a sidecar child process with only `outbound` listeners (the frontend's
// identity in its identity.dir), their ports from its log, plain HTTP calls from "the app" to them, and
// upstreams made to misbehave in one precise way: an HTTPS server with a chosen certificate (trusted,
// foreign CA, revoked) and a chosen handler, or a TCP port that accepts and never speaks.
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { join } from 'node:path';
import { FRONTEND_ID, metricValue, startSidecarProcess, writeSidecarConfig } from './sidecar.js';
import type { SidecarProcess } from './sidecar.js';
import { makeTestPki, writeIdentityDir } from './pki-fixtures.js';
import type { TestLeaf, TestPki } from './pki-fixtures.js';
import { waitFor } from './poll.js';
import { tempDir } from './temp-dir.js';

export interface OutboundRig {
  tmp: string;
  pki: TestPki;
  sidecar: SidecarProcess;
  /** Outbound listener ports, in the order of `outbound` in the config. */
  ports: number[];
  /** Series of one upstream ("127.0.0.1:PORT") in /metrics. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** Starts a sidecar whose outbound list is built by `outbound(pki)`; `crl` (made from the pki) goes into crl.pem. */
export async function startOutboundRig(outbound: (pki: TestPki) => Record<string, unknown>[], opts: { pki?: TestPki; crl?: (pki: TestPki) => string } = {}): Promise<OutboundRig> {
  const { dir: tmp, cleanup: removeTmp } = tempDir('meshward-outbound-');
  const pki = opts.pki ?? makeTestPki();
  writeIdentityDir(join(tmp, 'identity'), pki.leaf({ spiffeId: FRONTEND_ID }), pki, opts.crl?.(pki));
  const listenerConfigs = outbound(pki);
  const config = writeSidecarConfig(tmp, { identity: { dir: './identity' }, outbound: listenerConfigs, admin: { listen: '127.0.0.1:0' }, log: { level: 'info' } });
  const listeners = listenerConfigs.length;
  const sidecar = await startSidecarProcess(config);
  try {
    await sidecar.waitUntilReady();
    // Log lines are written at the end of their event-loop turn: readiness can be seen before the
    // outbound_listening lines arrive.
    await waitFor('every outbound listener logged', () => (sidecar.logs.filter((l) => l.event === 'outbound_listening').length >= listeners ? true : undefined));
  } catch (err) {
    await sidecar.stop('SIGKILL');
    removeTmp();
    throw err;
  }
  const ports = sidecar.logs.filter((l) => l.event === 'outbound_listening').map((l) => Number(String(l.address).split(':').pop()));
  return {
    tmp,
    pki,
    sidecar,
    ports,
    metric: async (name, labels) => metricValue(await sidecar.metrics(), name, labels),
    async close() {
      await sidecar.stop();
      removeTmp();
    },
  };
}

/** One plain HTTP request from the app to an outbound port. */
export function appCall(port: number, path: string, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, timeout: timeoutMs, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)));
    req.end();
  });
}

export interface Upstream {
  port: number;
  close(): Promise<void>;
}

/** An mTLS HTTPS server presenting `leaf` and trusting the pki's bundle, answering with `handler`. */
export async function httpsUpstream(pki: TestPki, leaf: TestLeaf, handler: (req: IncomingMessage, res: ServerResponse) => void, onUpgrade?: (req: IncomingMessage, socket: Socket, head: Buffer) => void): Promise<Upstream> {
  const server: HttpsServer = createHttpsServer({ key: leaf.keyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true }, handler);
  if (onUpgrade) server.on('upgrade', onUpgrade);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP port that accepts connections and never sends a byte (a hung upstream: no TLS handshake). */
export async function silentUpstream(): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

