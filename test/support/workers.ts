// Test helpers for `workers: N` (node:cluster) scenarios: a sidecar config with N workers in front of an
// HTTP app, the worker pids from the primary's log, the parent of a process from /proc, and an mTLS GET
// on a fresh connection that reports the served certificate's serial.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { freePort } from './ports.js';
import { FRONTEND_ID, makeScenario } from './sidecar.js';
import type { Scenario, SidecarProcess } from './sidecar.js';
import type { TestLeaf, TestPki } from './pki-fixtures.js';

/**
 * A scenario whose sidecar runs `workers` workers in front of `app`, on a port chosen up front: the
 * workers share the inbound port through the primary, and with port 0 a worker re-forked after all the
 * others died would get a different one.
 */
export async function makeWorkersScenario(app: string, workers: number | string, opts: { policy?: object; layout?: 'plain' | 'kubernetes' } = {}): Promise<{ scenario: Scenario; port: number }> {
  const port = await freePort();
  const scenario = makeScenario({
    app,
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.layout ? { layout: opts.layout } : {}),
    config: { inbound: { listen: `127.0.0.1:${port}`, app }, workers },
  });
  return { scenario, port };
}

/** Worker number → pid of its current process, from the primary's `worker_started` log lines. */
export function startedWorkers(sidecar: SidecarProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const l of sidecar.logs) if (l.event === 'worker_started') pids.set(Number(l.worker), Number(l.pid));
  return pids;
}

/** The parent pid of `pid` (field 4 of /proc/PID/stat), or undefined when the process is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** True while a process with this pid exists (zombies included). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface MtlsResponse {
  status: number;
  body: string;
  /** Serial of the certificate the sidecar presented on this connection (lowercase hex). */
  serverSerial: string;
}

/** GET over a new mTLS connection (no agent: every call is a full handshake to whichever worker accepts). */
export function mtlsGet(pki: TestPki, client: TestLeaf, port: number, path: string, method = 'GET'): Promise<MtlsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, agent: false, servername: 'localhost', ca: pki.bundlePem, cert: client.chainPem, key: client.keyPem, timeout: 15_000 },
      (res) => {
        const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        const serverSerial = cert.serialNumber.toLowerCase().replace(/^(00)+/, '');
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serverSerial }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The client most scenarios use: frontend holds orders:read and orders:write. */
export function frontendLeaf(pki: TestPki): TestLeaf {
  return pki.leaf({ spiffeId: FRONTEND_ID });
}
