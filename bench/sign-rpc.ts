// Benchmark: Sign RPCs per second against `meshward ca serve` (run as its own process, on SQLite or on a
// throwaway PostgreSQL) from N concurrent clients, each renewing its own EC P-256 certificate over mTLS
// (the steady-state load of a fleet of agents), and the latency distribution. Bounded in time: warm-up plus
// `seconds`. bench/issuance.ts calls measureSignRpc for both stores beside raw signing; run alone it prints
// one table:  node dist/bench/sign-rpc.js [--seconds N] [--clients N] [--store sqlite|postgres] [--profile DIR]
// (--profile: the server runs with --cpu-prof and writes its .cpuprofile into DIR, to see where time goes;
// --server-out FILE: the server's stdout (audit lines, and --trace-gc output) kept in FILE instead of dropped;
// MESHWARD_BENCH_NODE_ARGS="--trace-gc …": extra node flags for the server; MESHWARD_BENCH_SERVE_ARGS: extra
// `ca serve` flags (e.g. "--sign-concurrency 4"; a build that does not know a flag refuses to start);
// MESHWARD_BENCH_SERVER=path/to/bin/meshward.js runs another build's server, for a before/after comparison;
// MESHWARD_BENCH_SERVER_CPUS=0 MESHWARD_BENCH_CLIENT_CPUS=1: the server and the clients each pinned to their own
// cores with taskset, so on a 2-core machine the clients' work does not land on the server's core).
// Besides the server's CPU it reports the clients' (this process's) CPU per Sign and this process's event-loop
// delay: on a 2-core machine the 50 clients' own TLS and gRPC work competes with the server for the cores,
// and a client whose event loop is late adds its delay to every latency it measures.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
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
  /**
   * Threads the clients are spread over (default 1: every client on this process's one event loop). Real
   * agents are separate processes: with one loop, a wave of 50 responses is handled one after another and the
   * last client's latency includes the 49 others' client-side work.
   */
  clientThreads?: number;
  /** Keep the server's stdout in this file (default: drained and dropped). */
  serverOut?: string;
}

export interface SignRpcResult {
  perSecond: number; p50: number; p99: number; count: number; failures: number;
  /** The server's CPU time (user + system) per Sign during the measurement: unlike the rate, it holds on a busy machine. */
  serverCpuUs: number;
  /** This process's CPU time (the clients: TLS, HTTP/2, protobuf) per Sign during the measurement. */
  clientCpuUs: number;
  /** This process's event-loop delay during the measurement, p99 and max (ms). */
  clientLoopDelayP99: number; clientLoopDelayMax: number;
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

/** One thread's share of the clients. */
interface ClientShare {
  port: number; bundlePem: string;
  identities: { keyPem: string; chainPem: string; csr: Buffer }[];
}

/** The run's clock (Date.now() values, the same in every thread). */
interface ClientClock { measureFrom: number; end: number }

interface ClientOutcome { latencies: number[]; failures: number; loopDelayP99: number; loopDelayMax: number }

/** Runs a job's clients, each its own channel (connection) renewing in a loop until `end`; latencies after `measureFrom`. */
async function runClients(job: ClientShare, clock: ClientClock): Promise<ClientOutcome> {
  const latencies: number[] = [];
  let failures = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const loopTimer = setTimeout(() => loopDelay.enable(), clock.measureFrom - Date.now());
  const clients: CaClient[] = [];
  try {
    await Promise.all(job.identities.map(async (id) => {
      const client = new CaClient({
        address: `127.0.0.1:${job.port}`, rootsPem: Buffer.from(job.bundlePem), caSpiffeId: caServerSpiffeId(TD),
        clientKeyPem: Buffer.from(id.keyPem), clientChainPem: Buffer.from(id.chainPem),
      });
      clients.push(client);
      const csr = Buffer.from(id.csr);
      while (Date.now() < clock.end) {
        // Only calls that start after the warm-up count: a call sent before it (the first one of each
        // client carries the connection's TLS handshake) is not a steady-state latency.
        const counted = Date.now() >= clock.measureFrom;
        const t0 = process.hrtime.bigint();
        try {
          await client.sign({ csr, token: '', ttlSeconds: 3600 }, 30_000);
          if (counted) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch {
          failures += 1;
        }
      }
    }));
  } finally {
    clearTimeout(loopTimer);
    loopDelay.disable();
    for (const c of clients) c.close();
  }
  return { latencies, failures, loopDelayP99: loopDelay.percentile(99) / 1e6, loopDelayMax: loopDelay.max / 1e6 };
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
  nodeArgs.push(...(process.env.MESHWARD_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''));
  const bin = process.env.MESHWARD_BENCH_SERVER ?? join(REPO, 'bin', 'meshward.js');
  const serverCpus = process.env.MESHWARD_BENCH_SERVER_CPUS;
  const clientCpus = process.env.MESHWARD_BENCH_CLIENT_CPUS;
  // Every thread of this process, and the client threads started later (they inherit the mask).
  if (clientCpus) execFileSync('taskset', ['-a', '-p', '-c', clientCpus, String(process.pid)], { stdio: 'ignore' });
  // taskset execs node in its own place: `server.pid` stays the server's pid.
  const [command, prefix] = serverCpus ? ['taskset', ['-c', serverCpus, process.execPath]] : [process.execPath, []];
  const server = spawn(command, [...prefix, ...nodeArgs, bin, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0',
    '--store', opts.store, '--sign-rate', '1000000', '--sign-burst', '1000000',
    ...(process.env.MESHWARD_BENCH_SERVE_ARGS ?? '').split(' ').filter((a) => a !== '')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('the CA server did not start within 30 s')), 30_000);
      // Removed once the port is known: left attached, it kept appending every audit line to `buf` and ran the
      // regex over up to 1 MB of it per chunk, 10 % of this (client) process's CPU during a run, competing with
      // the server for the same 2 cores.
      const onData = (b: Buffer) => {
        buf += b.toString();
        const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          server.stdout!.off('data', onData);
          resolvePort(Number(m[1]));
        }
      };
      server.stdout!.on('data', onData);
      server.on('exit', (code) => reject(new Error(`the CA server exited (${code})`)));
    });
    if (opts.serverOut) server.stdout!.pipe(createWriteStream(opts.serverOut));
    else server.stdout!.resume(); // audit lines: drained, not kept

    // Client threads start (load their modules) before the clock does: their start-up is not measured.
    const threads = Math.max(1, Math.min(opts.clientThreads ?? 1, identities.length));
    const workers: Worker[] = [];
    const shares: ClientShare[] = [];
    for (let t = 0; t < threads; t++) {
      shares.push({
        port, bundlePem: bundle.toString(),
        identities: identities.filter((_, i) => i % threads === t)
          .map((id) => ({ keyPem: id.issued.privateKeyPem, chainPem: id.issued.chainPem, csr: id.csr })),
      });
    }
    const reports: Promise<ClientOutcome>[] = [];
    if (threads > 1) {
      for (const share of shares) {
        const worker = new Worker(new URL(import.meta.url), { workerData: { signRpcClients: share } });
        workers.push(worker);
        await new Promise<void>((ready, fail) => {
          worker.once('message', () => ready());
          worker.once('error', fail);
        });
        reports.push(new Promise<ClientOutcome>((done, fail) => {
          worker.once('message', done);
          worker.once('error', fail);
          worker.once('exit', (code) => fail(new Error(`a client thread exited (${code}) before reporting`)));
        }));
      }
    }
    const start = Date.now();
    const clock: ClientClock = { measureFrom: start + WARMUP_MS, end: start + WARMUP_MS + opts.seconds * 1000 };
    const measureFrom = clock.measureFrom;
    let cpuFrom = 0;
    let clientCpuFrom = process.cpuUsage();
    const cpuTimer = setTimeout(() => {
      cpuFrom = cpuSecondsOf(server.pid!);
      clientCpuFrom = process.cpuUsage(); // every thread of this process: the client threads included
    }, measureFrom - Date.now());
    for (const w of workers) w.postMessage(clock);
    const outcomes = threads === 1 ? [await runClients(shares[0]!, clock)] : await Promise.all(reports);
    const latencies = outcomes.flatMap((o) => o.latencies);
    const failures = outcomes.reduce((n, o) => n + o.failures, 0);
    const cpu = cpuSecondsOf(server.pid!) - cpuFrom;
    const clientCpu = process.cpuUsage(clientCpuFrom);
    clearTimeout(cpuTimer);
    const elapsed = (Date.now() - measureFrom) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), count: latencies.length, failures,
      serverCpuUs: (cpu * 1e6) / latencies.length,
      clientCpuUs: (clientCpu.user + clientCpu.system) / latencies.length,
      clientLoopDelayP99: Math.max(...outcomes.map((o) => o.loopDelayP99)), clientLoopDelayMax: Math.max(...outcomes.map((o) => o.loopDelayMax)),
    };
  } finally {
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
  const clientThreads = Number(arg('client-threads') ?? 1);
  const serverOut = arg('server-out') === undefined ? undefined : resolve(arg('server-out')!);
  let cluster: { createDatabase(): Promise<string>; destroy(): Promise<void> } | undefined;
  try {
    let store = 'sqlite';
    if (kind === 'postgres') {
      const { PostgresCluster } = await import('../test/support/postgres.js');
      cluster = await PostgresCluster.start({ durable: true });
      store = await cluster.createDatabase();
    }
    const r = await measureSignRpc({ store, clients, seconds, profileDir, serverOut, clientThreads });
    process.stdout.write('| case | Sign RPCs/s | p50 (ms) | p99 (ms) | server CPU per Sign (µs) | client CPU per Sign (µs) | client loop delay p99 / max (ms) | failed |\n|---|---|---|---|---|---|---|---|\n');
    process.stdout.write(`| Sign, ${clients} concurrent clients, EC P-256, mTLS renewal, ${kind} (${seconds} s) | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.serverCpuUs.toFixed(0)} | ${r.clientCpuUs.toFixed(0)} | ${r.clientLoopDelayP99.toFixed(1)} / ${r.clientLoopDelayMax.toFixed(1)} | ${r.failures} |\n`);
  } finally {
    await cluster?.destroy();
  }
}

if (!isMainThread && (workerData as { signRpcClients?: ClientShare } | null)?.signRpcClients) {
  // A client thread: says it is loaded, waits for the clock, runs its share, reports.
  parentPort!.once('message', (clock: ClientClock) => {
    void runClients((workerData as { signRpcClients: ClientShare }).signRpcClients, clock).then((outcome) => parentPort!.postMessage(outcome));
  });
  parentPort!.postMessage('ready');
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`sign-rpc bench failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
