// The proxy benchmark's figures and the markdown report made from them: one table (each case's figures
// and the ratios to nginx), how it was measured, and every round's raw line. Only the rows of the parts
// that ran (BENCH_CASES) are shown; meshward variants (BENCH_MESHWARD_VARIANTS) add a column each.
import type { BenchKeyType } from './certs.js';
import type { PacedResult } from './paced.js';
import { percentile } from './paced.js';
import { BENCH_CASES, type BenchCase } from './selection.js';
import type { ProxyName } from './servers.js';
import { requestsPerSecond, type WrkResult } from './wrk.js';

/** The column of a meshward variant: "meshward (label)". */
export type VariantColumn = `meshward (${string})`;
export const variantColumn = (label: string): VariantColumn => `meshward (${label})`;

/** What is measured as a proxy: the three baselines' instances and the meshward variants. */
export type Measured = ProxyName | VariantColumn;
export type CaseName = 'direct' | Measured;

/** A variant as the report describes it. */
export interface VariantInfo { column: VariantColumn; bin: string; node: string; nodeVersion: string }

export interface LoadRun {
  wrk: WrkResult;
  cpuUsPerRequest?: number;        // the proxy's own utime+stime (whole process tree) per request
  maxRssMb?: number;               // largest serving-process RSS sampled during the run
  clientCoreBusy: number;          // % of core 0 (wrk + backend) busy
  proxyCoreBusy: number;           // % of core 1 (the proxy) busy
}

/** The keep-alive case with 2 workers per proxy (separate instances, not pinned). */
export interface TwoWorkerFigures {
  keepAlive: Partial<Record<Measured, LoadRun[]>>;
  rss: Partial<Record<Measured, { idleMb?: number; loadMb?: number }>>;   // the largest worker
  problems: Partial<Record<Measured, string>>;                           // why an instance is n/a
}

export interface RssFigures { idleMb?: number; idleConnectionsMb?: number; idleOpened?: number; idleFailed?: number; loadMb?: number }
export interface RotationFigures { rotations: number; failed: number; requests: number; servesLast: boolean; error?: string }

/** The instances the logging case compares. */
export const LOGGING_INSTANCES = ['meshward, line off', 'meshward, line on', 'nginx, access log'] as const;
export type LoggingInstance = (typeof LOGGING_INSTANCES)[number];

/** The logging case's table: req/s and CPU per request of each instance, and the two ratios the issue targets. */
function loggingTable(f: Figures): string[] {
  const med = (i: LoggingInstance, pick: (r: LoadRun) => number | undefined): number | undefined => {
    const runs = f.logging[i];
    if (!runs || runs.length === 0) return undefined;
    const v = median(runs.map((r) => pick(r) ?? NaN));
    return Number.isFinite(v) ? v : undefined;
  };
  const show = (v: number | undefined, digits: number) => (v === undefined ? 'n/a' : fmt(v, digits));
  const ratioOf = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`);
  const rps = (i: LoggingInstance) => med(i, (r) => requestsPerSecond(r.wrk));
  const cpu = (i: LoggingInstance) => med(i, (r) => r.cpuUsPerRequest);
  const rows = [
    ['keep-alive req/s', ...LOGGING_INSTANCES.map((i) => show(rps(i), 0)),
      ratioOf(rps('meshward, line on'), rps('meshward, line off')), ratioOf(rps('meshward, line on'), rps('nginx, access log'))],
    ['proxy CPU per request (µs)', ...LOGGING_INSTANCES.map((i) => show(cpu(i), 1)),
      ratioOf(cpu('meshward, line on'), cpu('meshward, line off')), ratioOf(cpu('meshward, line on'), cpu('nginx, access log'))],
  ];
  return [
    '## Logging every allowed request',
    '',
    `| ${f.settings.connections} keep-alive connections, 1 core | meshward, line off (\`log.allowed: debug\`) | meshward, line on (\`log.allowed: info\`, the default) | nginx, buffered access log | on ÷ off (target ≥ 0.90× req/s) | on ÷ nginx with its log (target ≥ 0.5× req/s) |`,
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
}

export interface Figures {
  startedAt: Date;
  settings: {
    rounds: number; seconds: number; connections: number; handshakeConnections: number; pacedRate: number;
    pacedSeconds: number; idleConnections: number; rotations: number; rotationCerts: number; rotationIntervalMs: number;
    rsaClientKey: BenchKeyType; twoWorkerWrkThreads: number;
    cases: readonly BenchCase[];                 // the parts that ran (BENCH_CASES)
  };
  variants: VariantInfo[];                       // extra meshward builds (BENCH_MESHWARD_VARIANTS)
  environment: {
    cpu: string; cores: number; node: string; nginx: string; haproxy: string; wrk: string; openssl: string;
    certificates: string; backend: string;
  };
  keepAlive: Partial<Record<CaseName, LoadRun[]>>;
  /** The logging case: keep-alive runs of meshward with the allowed-request line off and on, and nginx with an access log. */
  logging: Partial<Record<LoggingInstance, LoadRun[]>>;
  twoWorkers: TwoWorkerFigures;
  handshakes: Record<BenchKeyType, Partial<Record<Measured, LoadRun[]>>>;
  paced: Partial<Record<CaseName, PacedResult[]>>;
  rss: Partial<Record<Measured, RssFigures>>;
  rotation: Partial<Record<Measured, RotationFigures>>;
  /** Why a one-worker instance (meshward or a variant) is n/a: it did not start or answered wrongly. */
  problems: Partial<Record<Measured, string>>;
  notes: string[];
  rounds: string[];
}

const BASE_COLUMNS: readonly CaseName[] = ['direct', 'nginx', 'haproxy', 'meshward'];

function columnTitle(c: CaseName): string {
  return c === 'haproxy' ? 'HAProxy' : c;
}

/** What the variant columns are and where they were measured (the first bullets of "How it was measured"). */
function variantLines(variants: readonly VariantInfo[]): string[] {
  if (variants.length === 0) return [];
  return [
    '- Variants (BENCH_MESHWARD_VARIANTS): other meshward builds, each started like meshward (1 process per key type, ' +
      'pinned alone to core 1, frozen while another case runs, its own ports and files) and measured in the same ' +
      'interleaved rounds, in the keep-alive (1 worker) and full-handshake cases only: not in the paced-latency, ' +
      'idle-connection, rotation or 2-worker cases (their cells there are —). Their idle RSS and RSS under load are read like meshward\'s.',
    ...variants.map((v) => `  - ${v.column}: \`${v.bin}\` run by \`${v.node}\` (Node ${v.nodeVersion})`),
  ];
}

function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : percentile(v, 50);
}

type Cell = { value: number; text?: string } | undefined;

function fmt(n: number, digits: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return digits === 0 ? String(Math.round(n)) : n.toFixed(digits);
}

function ratio(a: Cell, nginx: Cell): string {
  if (!a || !nginx || !Number.isFinite(a.value) || !Number.isFinite(nginx.value) || nginx.value === 0) return '—';
  return `${(a.value / nginx.value).toFixed(2)}×`;
}

export function renderReport(f: Figures): string {
  const s = f.settings;
  const ran = (c: BenchCase) => s.cases.includes(c);
  const rows: string[] = [];
  const columns: CaseName[] = [...BASE_COLUMNS, ...f.variants.map((v) => v.column)];
  // Each column but direct and nginx gets a ratio to nginx.
  const ratioColumns = columns.filter((c): c is Measured => c !== 'direct' && c !== 'nginx');
  const unavailable = (c: CaseName) => c !== 'direct' && f.problems[c] !== undefined;
  const row = (label: string, digits: number, get: (c: CaseName) => Cell, withRatio = true, na: (c: CaseName) => boolean = unavailable) => {
    const cells = columns.map((c) => {
      if (na(c)) return 'n/a';
      const cell = get(c);
      return cell === undefined ? '—' : (cell.text ?? fmt(cell.value, digits));
    });
    const nginx = get('nginx');
    const ratios = ratioColumns.map((c) => (!withRatio ? '—' : na(c) || na('nginx') ? 'n/a' : ratio(get(c), nginx)));
    rows.push(`| ${label} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  };
  const ka = (c: CaseName, pick: (r: LoadRun) => number | undefined): Cell => {
    const runs = f.keepAlive[c];
    if (!runs || runs.length === 0) return undefined;
    const v = median(runs.map((r) => pick(r) ?? NaN));
    return Number.isFinite(v) ? { value: v } : undefined;
  };
  const proxyOnly = (c: CaseName): c is Measured => c !== 'direct';

  if (ran('keepalive')) {
    row(`keep-alive HTTP/1.1 req/s (${s.connections} connections)`, 0, (c) => ka(c, (r) => requestsPerSecond(r.wrk)));
    row('keep-alive latency p50 (ms)', 3, (c) => ka(c, (r) => r.wrk.p50_us / 1000));
    row('keep-alive latency p99 (ms)', 3, (c) => ka(c, (r) => r.wrk.p99_us / 1000));
    row('proxy CPU per request (µs, utime+stime)', 1, (c) => (proxyOnly(c) ? ka(c, (r) => r.cpuUsPerRequest) : undefined));
  }

  // The 2-worker instances: the columns are nginx with 2 workers, HAProxy with 2 threads, meshward `workers: 2`.
  const tw = f.twoWorkers;
  const twNa = (c: CaseName) => proxyOnly(c) && tw.problems[c] !== undefined;
  const ka2 = (c: CaseName, pick: (r: LoadRun) => number | undefined): Cell => {
    const runs = proxyOnly(c) ? tw.keepAlive[c] : undefined;
    if (!runs || runs.length === 0) return undefined;
    const v = median(runs.map((r) => pick(r) ?? NaN));
    return Number.isFinite(v) ? { value: v } : undefined;
  };
  if (ran('2workers')) {
    row(`keep-alive HTTP/1.1 req/s with 2 workers (${s.connections} connections, not pinned)`, 0, (c) => ka2(c, (r) => requestsPerSecond(r.wrk)), true, twNa);
    row('2 workers: keep-alive latency p50 (ms)', 3, (c) => ka2(c, (r) => r.wrk.p50_us / 1000), true, twNa);
    row('2 workers: keep-alive latency p99 (ms)', 3, (c) => ka2(c, (r) => r.wrk.p99_us / 1000), true, twNa);
    row('2 workers: proxy CPU per request (µs, whole process tree)', 1, (c) => ka2(c, (r) => r.cpuUsPerRequest), true, twNa);
  }

  for (const [kt, label] of ran('handshakes') ? [['ec-p256', 'EC P-256'], ['rsa-2048', 'RSA-2048']] as const : []) {
    const hs = (c: CaseName, pick: (r: LoadRun) => number | undefined): Cell => {
      const runs = proxyOnly(c) ? f.handshakes[kt][c] : undefined;
      if (!runs || runs.length === 0) return undefined;
      const v = median(runs.map((r) => pick(r) ?? NaN));
      return Number.isFinite(v) ? { value: v } : undefined;
    };
    row(`full mTLS handshakes/s, ${label} (no resumption)`, 0, (c) => hs(c, (r) => requestsPerSecond(r.wrk)));
    const cpu = (c: CaseName) => hs(c, (r) => r.cpuUsPerRequest);
    row(`proxy CPU per full handshake, ${label} (µs)`, 0, cpu);
    row(`handshake capacity on one core, ${label} (1e6 ÷ CPU µs per handshake, /s)`, 0, (c) => {
      const v = cpu(c);
      return v && v.value > 0 ? { value: 1e6 / v.value } : undefined;
    });
  }
  const paced = (c: CaseName, pick: (r: PacedResult) => number): Cell => {
    const runs = f.paced[c];
    return runs && runs.length > 0 ? { value: median(runs.map(pick)) / 1000 } : undefined;
  };
  const added = (c: CaseName, pick: (r: PacedResult) => number): Cell => {
    if (!proxyOnly(c)) return undefined;
    const mine = paced(c, pick);
    const direct = paced('direct', pick);
    return mine && direct ? { value: mine.value - direct.value } : undefined;
  };
  if (ran('paced')) {
    row(`latency at ${s.pacedRate} req/s p50 (ms)`, 3, (c) => paced(c, (r) => r.p50Us));
    row(`latency at ${s.pacedRate} req/s p99 (ms)`, 3, (c) => paced(c, (r) => r.p99Us));
    row(`added latency at ${s.pacedRate} req/s p50 (ms, minus direct)`, 3, (c) => added(c, (r) => r.p50Us));
    row(`added latency at ${s.pacedRate} req/s p99 (ms, minus direct)`, 3, (c) => added(c, (r) => r.p99Us));
  }
  const rss = (c: CaseName, pick: (r: RssFigures) => number | undefined): Cell => {
    const v = proxyOnly(c) ? f.rss[c] : undefined;
    const n = v ? pick(v) : undefined;
    return n !== undefined && Number.isFinite(n) ? { value: n } : undefined;
  };
  // Idle RSS is read at every start, whatever parts run.
  row('RSS idle (MB)', 1, (c) => rss(c, (r) => r.idleMb));
  if (ran('idle')) {
    row(`RSS with ${s.idleConnections} idle keep-alive mTLS connections (MB)`, 1, (c) => {
      const cell = rss(c, (r) => r.idleConnectionsMb);
      const v = proxyOnly(c) ? f.rss[c] : undefined;
      if (!cell || !v) return cell;
      const delta = v.idleMb !== undefined ? ` (+${(cell.value - v.idleMb).toFixed(1)})` : '';
      const short = v.idleOpened !== undefined && v.idleOpened < s.idleConnections ? `, only ${v.idleOpened} opened` : '';
      return { value: cell.value, text: `${cell.value.toFixed(1)}${delta}${short}` };
    });
  }
  if (ran('keepalive')) row('RSS under load (MB, max during keep-alive runs)', 1, (c) => rss(c, (r) => r.loadMb));
  const rss2 = (c: CaseName, pick: (r: { idleMb?: number; loadMb?: number }) => number | undefined): Cell => {
    const v = proxyOnly(c) ? tw.rss[c] : undefined;
    const n = v ? pick(v) : undefined;
    return n !== undefined && Number.isFinite(n) ? { value: n } : undefined;
  };
  if (ran('2workers')) {
    row('2 workers: RSS idle (MB, largest worker)', 1, (c) => rss2(c, (r) => r.idleMb), true, twNa);
    row('2 workers: RSS under load (MB, largest worker, max during the runs)', 1, (c) => rss2(c, (r) => r.loadMb), true, twNa);
  }
  if (ran('rotations')) {
    row(`failed requests during ${s.rotations} certificate rotations under load`, 0, (c) => {
      const r = proxyOnly(c) ? f.rotation[c] : undefined;
      if (!r) return undefined;
      const text = `${r.failed} of ${r.requests}` + (r.rotations < s.rotations ? ` (${r.rotations} rotations)` : '') +
        (r.servesLast ? '' : ' (new certificate not served!)');
      return { value: r.failed, text };
    }, false);
  }

  const d = f.startedAt.toISOString().replace('T', ' ').slice(0, 16);
  const e = f.environment;
  const header = ['case', ...columns.map(columnTitle), ...ratioColumns.map((c) => `${columnTitle(c)}/nginx`)];
  /** A bullet of "How it was measured" shown only when its part ran. */
  const when = (c: BenchCase, text: string): string[] => (ran(c) ? [text] : []);
  const lines = [
    `# Proxy benchmark: meshward vs nginx vs HAProxy as mTLS-terminating proxies (${d} UTC)`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---|').join('')}`,
    ...rows,
    '',
    `Medians of ${s.rounds} interleaved rounds (every case once per round, order rotated), ${s.seconds} s per run. ` +
      `Ratio = value ÷ nginx's value${ran('2workers') ? ' (the 2-worker rows: ÷ nginx with 2 workers)' : ''}: for req/s, handshakes and capacity ` +
      'higher is better; for latency, CPU and RSS lower is better.',
    ...(ran('logging') ? ['', ...loggingTable(f)] : []),
    ...(s.cases.length < BENCH_CASES.length
      ? ['', `Parts run: ${s.cases.join(', ')} (BENCH_CASES); the rows of the other parts are left out.`] : []),
    ...(f.notes.length > 0 ? ['', ...f.notes.map((n) => `**${n}**`)] : []),
    '',
    '## How it was measured',
    `- Machine: ${e.cores} × ${e.cpu}; Node ${e.node}, nginx ${e.nginx}, HAProxy ${e.haproxy}, wrk ${e.wrk}, OpenSSL ${e.openssl}.`,
    ...variantLines(f.variants),
    '- Each proxy runs alone on core 1 (`taskset -c 1`: nginx 1 worker, HAProxy 1 thread, meshward 1 process); ' +
      'wrk, the backend and the benchmark script share core 0 (except in the 2-worker case, below). All on 127.0.0.1, TLS 1.3, no access logs anywhere ' +
      '(meshward logs allowed requests at debug, level info).',
    `- Backend: ${e.backend}; "direct" is wrk → backend over plain HTTP. Proxies keep upstream connections alive ` +
      '(nginx `keepalive 64`, HAProxy `http-reuse always`, meshward its pool) and pass the client identity in a header.',
    `- Certificates: ${e.certificates}. SPIFFE IDs spiffe://bench.local/ns/bench/sa/{server,client}; ` +
      'the proxies verify the client chain (root → intermediate → leaf) on every full handshake.',
    ...when('keepalive', `- Keep-alive: \`wrk -t1 -c${s.connections}\` through bench/preload/clientcert.so (an LD_PRELOAD wrapper of ` +
      '`SSL_CTX_new` that loads the client certificate). CPU per request = the proxy process tree\'s utime+stime from ' +
      '/proc/PID/stat before and after the run ÷ requests.'),
    ...when('logging', '- Logging: the same keep-alive load against three more instances, interleaved in their own rounds: ' +
      'meshward with `log.allowed: debug` (the main instance: no line per request), meshward with `log.allowed: info` (a JSON ' +
      'line per allowed request, stdout redirected to a file in the folder of the policy file it watches, as in a pod with ' +
      'both on one volume), and nginx writing an access log line per request (`buffer=64k flush=1s`, with the client ' +
      'certificate subject).'),
    ...when('2workers', `- 2 workers: each proxy runs a second instance on its own port, started for this case only and frozen ` +
      '(SIGSTOP) like the others while another case runs: nginx `worker_processes 2`, HAProxy `nbthread 2`, meshward ' +
      '`workers: 2` (a node:cluster primary that runs the admin server and forks 2 workers; scheduling policy none unless ' +
      'NODE_CLUSTER_SCHED_POLICY is set). This case is NOT pinned to one core: the proxy, wrk ' +
      `(\`wrk -t${s.twoWorkerWrkThreads} -c${s.connections}\`, both cores) and the backend (core 0) share both cores, so the ` +
      'proxies compete with the client for CPU and req/s is what the whole machine gives; CPU per request is the utime+stime ' +
      'of the whole process tree (nginx master + workers, HAProxy master + worker, meshward primary + workers) ÷ requests. ' +
      'The issue\'s target (≥ 0.65× nginx with 2 workers) is read on the req/s row. RSS is the largest worker\'s (the ' +
      'targets are per worker); the rounds list shows both cores\' busy %.'),
    `- meshward policy: 10 grants, 20 routes; the request GET /api/v1/orders/12345 is matched by routes[18] (enforce mode).`,
    ...when('handshakes', `- Full handshakes: \`wrk -t1 -c${s.handshakeConnections} -H 'Connection: close'\` with MESHWARD_BENCH_NO_RESUME=1, ` +
      'so every request is a new TCP connection and a full mTLS handshake. Resumption is off in the client: the preload ' +
      'sets SSL_OP_NO_TICKET, turns the client session cache off and, because wrk reuses its SSL objects with SSL_clear() ' +
      '(which keeps the last session), drops the session (SSL_set_session(ssl, NULL)) in its SSL_connect/SSL_do_handshake ' +
      'wrappers before every handshake. EC P-256: server and client keys EC P-256 under an EC P-256 CA. RSA-2048: the CA and ' +
      `the server key RSA-2048, the client key ${s.rsaClientKey === 'rsa-2048' ? 'RSA-2048 too' : 'EC P-256 (issued by the RSA CA: an ' +
      'RSA client signs as slowly as the server and would make wrk\'s core the bottleneck; BENCH_RSA_CLIENT_KEY=rsa-2048 changes it)'}. ` +
      'Each proxy sends TLS 1.3 session tickets as it does by default; the client ignores them. ' +
      'The rounds list shows how busy each core was: core 1 near 100% means the proxy was the limit. ' +
      'CPU per full handshake = the proxy\'s utime+stime ÷ handshakes (each with its one proxied request); capacity = ' +
      '1e6 ÷ that, the handshakes/s the proxy would do with its core to itself. Without resumption the single wrk thread ' +
      '(on core 0 with the backend) can be the limit rather than the proxy (core 0 near 100%, core 1 below): then ' +
      'handshakes/s measures the client, and the issue\'s ≥ 0.85× target is compared on capacity. ' +
      `Connections: ${s.handshakeConnections} (BENCH_HANDSHAKE_CONNECTIONS; the default 16 loaded the proxies as much as 32 or 64 ` +
      'did in a quick interleaved trial: the same handshakes/s and proxy CPU within noise, so it was kept).'),
    ...when('paced', `- Added latency: a paced Node client (bench/proxy/paced.ts) sends ${s.pacedRate} req/s on a keep-alive pool for ` +
      `${s.pacedSeconds} s (after 1 s of warm-up at the same rate), timing each request from write to the end of the response; ` +
      'the same client measures the direct case (plain HTTP), whose median and p99 are subtracted.'),
    '- RSS: VmRSS of the serving process (nginx and HAProxy: the worker; meshward: the node process, the largest worker ' +
      'with several), idle after start' +
      (ran('idle') ? `, with ${s.idleConnections} idle keep-alive mTLS connections (each did a handshake and one ` +
        'request, opened by the benchmark script)' : '') +
      (ran('keepalive') ? ', and the maximum sampled every 250 ms during the keep-alive runs' : '') + '.',
    ...when('rotations', `- Rotations: ${s.rotations} certificate swaps, ${s.rotationIntervalMs} ms apart, cycling through ` +
      `${Math.min(s.rotationCerts, s.rotations)} certificates issued for the run (each swap a different one), written the Kubernetes way ` +
      '(new timestamped directory, `..data` symlink swapped with one rename) while wrk runs 20 keep-alive connections ' +
      'and 2 connections that close after every request (a full handshake each). nginx is sent SIGHUP and HAProxy ' +
      '(master-worker) SIGUSR2 after each swap, as their users do; meshward watches the directory itself. ' +
      'Failed = non-2xx responses + socket errors (connect, read, write, timeout) from both wrk runs; afterwards a new ' +
      'handshake must present the last certificate. The rounds list breaks errors down by kind: read errors are keep-alive ' +
      'connections closed under a request in flight (what an nginx or HAProxy worker does to its idle connections when a ' +
      'reload retires it).'),
    '',
    '## Rounds',
    '',
    ...f.rounds.map((l) => `- ${l}`),
  ];
  return lines.join('\n');
}
