// A revocation's whole path with real processes, for tests and bench/revocation.ts: a CA (SQLite or
// PostgreSQL) served by one or more `meshward ca serve`, a `meshward agent` writing identity/ (tls.crt,
// tls.key, ca.crt, crl.pem in one ..data swap), a `meshward sidecar` reading it in front of a TCP echo
// app, and callers holding certificates issued by that CA. `cert revoke` is run as an operator would.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { stringify } from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { makeCa, removeDir, tempDir } from '../ca-service/harness.js';
import { MESHWARD_BIN, runCli } from './cli.js';
import {
  DEFAULT_POLICY, FRONTEND_ID, SERVER_ID, startSidecarProcess, startTcpEchoApp, writeSidecarConfig,
  type SidecarProcess, type TcpEchoApp,
} from './sidecar.js';
import { startServeProcess, type ServeProcess } from './ca-serve-process.js';
import { waitFor } from './poll.js';

export interface MeshOptions {
  /** A postgres:// DSN, or undefined for D/ca.db. */
  store?: string;
  replicas?: number;
  /** `ca serve --crl-check-interval` (default: the server's). */
  crlCheckInterval?: string;
  /** The agent's --ca from the replicas' addresses (default: all of them, comma-separated). */
  agentCa?: (addresses: string[]) => string;
  /** The sidecar's identity.recheckInterval (default: the sidecar's). */
  recheckInterval?: string;
}

export interface Caller { serialHex: string; options: ConnectionOptions }

export interface RevocationMesh {
  root: string;
  caDir: string;
  identityDir: string;
  replicas: ServeProcess[];
  agent: ChildProcess;
  agentOutput(): string;
  sidecar: SidecarProcess;
  port: number;
  /** A caller with a new certificate from the CA for `spiffeId` (granted by the policy: the frontend). */
  caller(spiffeId?: string): Promise<Caller>;
  /** `meshward cert revoke` against the CA's store. */
  revoke(serialHex: string): Promise<void>;
  close(): Promise<void>;
}

export async function startRevocationMesh(opts: MeshOptions = {}): Promise<RevocationMesh> {
  const root = tempDir();
  const store = opts.store;
  const storeArgs = store ? ['--store', store] : [];
  const replicas: ServeProcess[] = [];
  let agent: ChildProcess | undefined;
  let sidecar: SidecarProcess | undefined;
  let app: TcpEchoApp | undefined;
  const close = async () => {
    await sidecar?.stop();
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((resolve) => agent!.once('exit', resolve));
      agent.kill('SIGTERM');
      const timer = setTimeout(() => agent!.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    for (const r of replicas) await r.stop();
    await app?.close();
    removeDir(root);
  };
  try {
    const caDir = await makeCa(root, store);
    const extra = opts.crlCheckInterval ? ['--crl-check-interval', opts.crlCheckInterval] : [];
    for (let i = 0; i < (opts.replicas ?? 1); i++) replicas.push(await startServeProcess(caDir, store ?? 'sqlite', extra));
    const addresses = replicas.map((r) => `127.0.0.1:${r.port}`);

    const ca = await Authority.open(caDir, { store });
    let token: string;
    try {
      token = (await ca.createToken(SERVER_ID, 600_000, new Date())).token;
    } finally {
      await ca.close();
    }
    const identityDir = join(root, 'identity');
    let agentOut = '';
    agent = spawn(process.execPath, [MESHWARD_BIN, 'agent', '--ca', (opts.agentCa ?? ((a) => a.join(',')))(addresses), '--bundle', join(caDir, 'bundle.crt'),
      '--token', token, '--spiffe-id', SERVER_ID, '--out', identityDir, '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (b: Buffer) => { agentOut += b.toString(); });
    const started = agent;
    await waitFor('the agent to write tls.crt and crl.pem', () => {
      if (started.exitCode !== null) throw new Error(`the agent exited ${started.exitCode}: ${agentOut}`);
      return existsSync(join(identityDir, 'tls.crt')) && existsSync(join(identityDir, 'crl.pem')) ? true : undefined;
    }, { timeoutMs: 60_000 });

    app = await startTcpEchoApp();
    const configPath = writeSidecarConfig(root, {
      identity: { dir: './identity', ...(opts.recheckInterval ? { recheckInterval: opts.recheckInterval } : {}) },
      inbound: { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${app.port}` },
      policy: './policy.yaml',
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'info', allowed: 'info' },
    });
    writeFileSync(join(root, 'policy.yaml'), stringify(DEFAULT_POLICY));
    sidecar = await startSidecarProcess(configPath, { timeoutMs: 60_000 });
    const port = await sidecar.waitForInbound(60_000);
    await sidecar.waitUntilReady(60_000);
    const bundle = readFileSync(join(caDir, 'bundle.crt'));

    return {
      root, caDir, identityDir, replicas, agent, sidecar, port,
      agentOutput: () => agentOut,
      async caller(spiffeId = FRONTEND_ID) {
        const authority = await Authority.open(caDir, { store });
        try {
          const issued = await authority.issue({ spiffeId }, new Date());
          return {
            serialHex: issued.serialHex,
            options: {
              host: '127.0.0.1', port, ca: bundle, cert: issued.chainPem, key: issued.privateKeyPem,
              // The sidecar's certificate names its SPIFFE ID, not 127.0.0.1: the chain is what is checked here.
              checkServerIdentity: () => undefined,
            },
          };
        } finally {
          await authority.close();
        }
      },
      async revoke(serialHex) {
        const r = await runCli(['cert', 'revoke', '--ca-dir', caDir, ...storeArgs, '--serial', serialHex, '--reason', 'keyCompromise']);
        if (r.code !== 0) throw new Error(`cert revoke exited ${r.code}: ${r.stderr}`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
