// Benchmark: Sign RPCs per second against `meshward ca serve` (run as its own process, on SQLite or on a
// throwaway PostgreSQL) from N concurrent clients, each renewing its own EC P-256 certificate over mTLS
// (the steady-state load of a fleet of agents), and the latency distribution. Bounded in time: warm-up plus
// `seconds`. bench/issuance.ts calls measureSignRpc for both stores beside raw signing; run alone it prints
// one table:  node dist/bench/sign-rpc.js [--seconds N] [--clients N] [--store sqlite|postgres] [--profile DIR]
// (--profile: the server runs with --cpu-prof and writes its .cpuprofile into DIR, to see where time goes;
// MESHWARD_BENCH_SERVER=path/to/bin/meshward.js runs another build's server, for a before/after comparison).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Authority } from '../src/ca/authority.js';
import { CaClient } from '../src/agent/client.js';
import { caServerSpiffeId } from '../src/ca/server/proto.js';
import { createCsr } from '../src/pki/csr.js';
import { generateKeyPair } from '../src/pki/keys.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WARMUP_MS = 1500;
const TD = 'bench.example.org';

export interface SignRpcOptions {
  /** 'sqlite' (D/ca.db) or a postgres:// DSN of an empty database. */
  store: string;
  clients: number;
  seconds: number;
  /** Run the server with --cpu-prof, writing its profile here. */
  profileDir?: string;
}

export interface SignRpcResult {
  perSecond: number; p50: number; p99: number; count: number; failures: number;
  /** The server's CPU time (user + system) per Sign during the measurement: unlike the rate, it holds on a busy machine. */
  serverCpuUs: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  // After the command name: state is field 3, utime 14 and stime 15 (1-based) in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function measureSignRpc(opts: SignRpcOptions): Promise<SignRpcResult> {
  const root = mkdtempSync(join(tmpdir(), 'meshward-bench-'));
  const dir = join(root, 'ca');
  const store = opts.store === 'sqlite' ? undefined : opts.store;
  const authority = await Authority.init(dir, { trustDomain: TD, store }, new Date());
  const identities = [];
  for (let i = 0; i < opts.clients; i++) {
    const spiffeId = `spiffe://${TD}/ns/bench/sa/client-${i}`;
    const issued = await authority.issue({ spiffeId, ttlMs: 3_600_000 }, new Date());
    const keys = generateKeyPair('ec-p256');
    identities.push({ spiffeId, issued, csr: createCsr({ subject: {}, uris: [spiffeId] }, keys) });
  }
  const bundle = Buffer.from(await authority.trustBundlePem());
  await authority.close();

  const nodeArgs = opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : [];
  const bin = process.env.MESHWARD_BENCH_SERVER ?? join(REPO, 'bin', 'meshward.js');
  const server = spawn(process.execPath, [...nodeArgs, bin, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0',
    '--store', opts.store, '--sign-rate', '1000000', '--sign-burst', '1000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const clients: CaClient[] = [];
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('the CA server did not start within 30 s')), 30_000);
      server.stdout!.on('data', (b: Buffer) => {
        buf += b.toString();
        const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
        if (buf.length > 1_000_000) buf = buf.slice(-10_000);
      });
      server.on('exit', (code) => reject(new Error(`the CA server exited (${code})`)));
    });
    server.stdout!.resume(); // audit lines: drained, not kept

    const start = Date.now();
    const measureFrom = start + WARMUP_MS;
    const end = measureFrom + opts.seconds * 1000;
    const latencies: number[] = [];
    let failures = 0;
    let cpuFrom = 0;
    const cpuTimer = setTimeout(() => {
      cpuFrom = cpuSecondsOf(server.pid!);
    }, measureFrom - Date.now());
    await Promise.all(identities.map(async (id) => {
      const client = new CaClient({
        address: `127.0.0.1:${port}`, rootsPem: bundle, caSpiffeId: caServerSpiffeId(TD),
        clientKeyPem: Buffer.from(id.issued.privateKeyPem), clientChainPem: Buffer.from(id.issued.chainPem),
      });
      clients.push(client);
      while (Date.now() < end) {
        const t0 = process.hrtime.bigint();
        try {
          await client.sign({ csr: id.csr, token: '', ttlSeconds: 3600 }, 30_000);
          if (Date.now() >= measureFrom) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch {
          failures += 1;
        }
      }
    }));
    const cpu = cpuSecondsOf(server.pid!) - cpuFrom;
    clearTimeout(cpuTimer);
    const elapsed = (Date.now() - measureFrom) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), count: latencies.length, failures,
      serverCpuUs: (cpu * 1e6) / latencies.length,
    };
  } finally {
    for (const c of clients) c.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const seconds = Number(arg('seconds') ?? process.env.SIGN_BENCH_SECONDS ?? 10);
  const clients = Number(arg('clients') ?? 50);
  const kind = arg('store') ?? 'sqlite';
  const profileDir = arg('profile') === undefined ? undefined : resolve(arg('profile')!);
  let cluster: { createDatabase(): Promise<string>; destroy(): Promise<void> } | undefined;
  try {
    let store = 'sqlite';
    if (kind === 'postgres') {
      const { PostgresCluster } = await import('../test/support/postgres.js');
      cluster = await PostgresCluster.start({ durable: true });
      store = await cluster.createDatabase();
    }
    const r = await measureSignRpc({ store, clients, seconds, profileDir });
    process.stdout.write('| case | Sign RPCs/s | p50 (ms) | p99 (ms) | server CPU per Sign (µs) | failed |\n|---|---|---|---|---|---|\n');
    process.stdout.write(`| Sign, ${clients} concurrent clients, EC P-256, mTLS renewal, ${kind} (${seconds} s) | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.serverCpuUs.toFixed(0)} | ${r.failures} |\n`);
  } finally {
    await cluster?.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`sign-rpc bench failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
