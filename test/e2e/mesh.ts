// Shared set-up for the end-to-end tests: a real CA (`meshward ca init` + `ca serve` as a child process)
// issuing short-lived certificates, tokens and client certificates from the CLI, and HTTPS calls that
// record which certificate the sidecar presented. Everything runs on 127.0.0.1; every process started
// here has a stop() that the tests call in `after`.
import { copyFileSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import { runCli } from '../support/cli.js';
import { TD } from '../support/pki-fixtures.js';
import { spawnMeshward, type LoggedProcess } from '../support/process.js';
import { DEFAULT_POLICY, writeSidecarConfig } from '../support/sidecar.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { waitFor } from '../support/poll.js';

/** `meshward ca init`, then a config.yaml that lets the CA issue `defaultTtl` certificates (up to maxTtl). */
export async function initCa(dir: string, ttl: { defaultTtl: string; maxTtl: string }): Promise<void> {
  const init = await runCli(['ca', 'init', '--dir', dir, '--trust-domain', TD]);
  if (init.code !== 0) throw new Error(`ca init failed: ${init.stderr}`);
  writeFileSync(join(dir, 'config.yaml'), [`trustDomain: ${TD}`, `defaultTtl: ${ttl.defaultTtl}`, `maxTtl: ${ttl.maxTtl}`, 'keyType: ec-p256', ''].join('\n'));
}

/** A one-time bootstrap token for `spiffeId`, made by the CLI while the server runs (they share ca.db). */
export async function createToken(caDir: string, spiffeId: string): Promise<string> {
  const r = await runCli(['token', 'create', '--ca-dir', caDir, '--spiffe-id', spiffeId, '--ttl', '10m']);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** `meshward cert issue` into `out` (tls.crt, tls.key, ca.crt). */
export async function issueCert(caDir: string, spiffeId: string, out: string, ttl = '1h'): Promise<void> {
  const r = await runCli(['cert', 'issue', '--ca-dir', caDir, '--spiffe-id', spiffeId, '--ttl', ttl, '--out', out]);
  if (r.code !== 0) throw new Error(`cert issue failed: ${r.stderr}`);
}

export interface CaProcess extends LoggedProcess {
  port: number;
  address: string;
}

/** `meshward ca serve --dir D --listen 127.0.0.1:0` as a child process; resolves once it listens. */
export async function startCaProcess(dir: string): Promise<CaProcess> {
  const ca = spawnMeshward(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], { timeoutMs: 30_000 });
  try {
    const port = Number((await ca.waitForLog((l) => l.event === 'listening', 'ca serve to listen')).port);
    return { ...ca, port, address: `127.0.0.1:${port}` };
  } catch (err) {
    await ca.stop();
    throw err;
  }
}

/**
 * A pod directory whose sidecar provisions its own certificate from `ca` (identity.provision): the pod's
 * copy of the CA bundle (a ConfigMap in Kubernetes: it only has to verify the CA server), the default
 * policy, an empty identity/ and a one-time token for `spiffeId`. Returns the path of its sidecar.yaml.
 */
export async function writeProvisionedPod(
  dir: string,
  o: { caDir: string; ca: CaProcess; app: string; spiffeId: string; ttl?: string; listen?: string; config?: Record<string, unknown> },
): Promise<string> {
  copyFileSync(join(o.caDir, 'bundle.crt'), join(dir, 'ca-bundle.crt'));
  writeFileSync(join(dir, 'policy.yaml'), stringify(DEFAULT_POLICY));
  mkdirSync(join(dir, 'identity'));
  const token = await createToken(o.caDir, o.spiffeId);
  return writeSidecarConfig(dir, {
    identity: { dir: './identity', provision: { ca: o.ca.address, bundle: './ca-bundle.crt', token, spiffeId: o.spiffeId, ...(o.ttl ? { ttl: o.ttl } : {}) } },
    inbound: { listen: o.listen ?? '127.0.0.1:0', app: o.app },
    policy: './policy.yaml',
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'info' },
    ...o.config,
  });
}

/** A TLS server-identity check for mesh peers: the certificate must carry exactly this SPIFFE ID. */
export function expectSpiffeId(id: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const uris = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
    return uris.length === 1 && uris[0] === id ? undefined : new Error(`the server presented ${uris.join(', ') || 'no SPIFFE ID'}, not ${id}`);
  };
}

export interface CallResult {
  status: number;
  body: string;
  /** Serial (lowercase hex, no 00 pad) of the certificate the server presented on this connection. */
  serial?: string;
  reusedSocket: boolean;
}

const peerSerial = (socket: TLSSocket): string | undefined => {
  const s = socket.getPeerCertificate()?.serialNumber;
  return s ? s.toLowerCase().replace(/^(00)+/, '') : undefined;
};

/** GET over mTLS; `agent` a keep-alive https.Agent, or false for a fresh connection. */
export function httpsGet(
  url: string,
  tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer; serverId: string },
  agent: HttpsAgent | false,
  timeoutMs = 10_000,
): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { agent, cert: tls.cert, key: tls.key, ca: tls.ca, checkServerIdentity: expectSpiffeId(tls.serverId), timeout: timeoutMs },
      (res) => {
        const serial = peerSerial(res.socket as TLSSocket);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), serial, reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface WorkloadFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/**
 * A workload's current tls.crt/tls.key/ca.crt from a folder the agent writes (Kubernetes Secret layout):
 * `..data` is resolved once so the three files come from the same generation.
 */
export function readWorkloadFiles(dir: string): WorkloadFiles {
  const gen = join(dir, readlinkSync(join(dir, '..data')));
  return { cert: readFileSync(join(gen, 'tls.crt')), key: readFileSync(join(gen, 'tls.key')), ca: readFileSync(join(gen, 'ca.crt')) };
}

/** DER of every certificate in a PEM text. */
export function certificatesIn(pem: string | Buffer): Buffer[] {
  return decodePem(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
}

/** The serial of the leaf (first certificate) in a chain PEM. */
export function leafSerial(chainPem: string | Buffer): string {
  return parseCertificate(certificatesIn(chainPem)[0]!).serialHex;
}
