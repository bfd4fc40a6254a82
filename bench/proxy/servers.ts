// The servers under test and their configuration: the backend (nginx returning a fixed 2-byte body),
// nginx and HAProxy as mTLS-terminating reverse proxies, and the meshward sidecar with a realistic
// policy (10 grants, 20 routes, the benchmark's path matched by routes[18]). Every proxy listens twice,
// once with the EC P-256 identity and once with the RSA-2048 one, so the handshake cases need no restart.
// Each proxy also exists as a second instance with 2 workers (EC P-256 only, on its own port, not
// pinned), started for the 2-worker keep-alive case only. Other meshward builds (variants, see
// selection.ts) run like the main meshward, each on its own ports and files.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { BenchCertificates, BenchKeyType, WorkloadFiles } from './certs.js';
import { writeGeneration } from './identity-dir.js';
import { ALL_CORES, start, waitForPort, type Tracked } from './processes.js';
import type { MeshwardVariant } from './selection.js';

export const PROXY_CORE = 1;
export const CLIENT_CORE = 0;
/** Fixed ports below Linux's ephemeral range (32768+), so tests that listen on port 0 never take them. */
export const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 24000);
export const BACKEND_PORT = PORT_BASE + 80;
export const REQUEST_PATH = '/api/v1/orders/12345';

export type ProxyName = 'nginx' | 'haproxy' | 'meshward';
export const PROXIES: readonly ProxyName[] = ['nginx', 'haproxy', 'meshward'];

const BASE_PORT: Record<ProxyName, number> = { nginx: PORT_BASE + 443, haproxy: PORT_BASE + 444, meshward: PORT_BASE + 445 };

/** Worker processes (nginx), threads (HAProxy) or node:cluster workers (meshward) of an instance. */
export type Workers = 1 | 2;

/**
 * The mTLS port of a proxy for a key type: base+44x for EC P-256, base+45x for RSA-2048 (one worker);
 * the 2-worker instances listen on base+46x, EC P-256 only.
 */
export function proxyPort(proxy: ProxyName, kt: BenchKeyType, workers: Workers = 1): number {
  if (workers === 2) return BASE_PORT[proxy] + 20;
  return BASE_PORT[proxy] + (kt === 'rsa-2048' ? 10 : 0);
}

/** proxyPort for both key types of an instance. */
const portsOf = (proxy: ProxyName, workers: Workers): Record<BenchKeyType, number> =>
  ({ 'ec-p256': proxyPort(proxy, 'ec-p256', workers), 'rsa-2048': proxyPort(proxy, 'rsa-2048', workers) });

/**
 * The ports of meshward variant number `slot` (0-based), clear of the baselines' 44x-46x:
 * base+500+10·slot (EC P-256), +1 (RSA-2048); admin +2 (EC P-256) and +3 (RSA-2048).
 */
export function variantPorts(slot: number): { listen: Record<BenchKeyType, number>; admin: Record<BenchKeyType, number> } {
  const first = PORT_BASE + 500 + 10 * slot;
  return { listen: { 'ec-p256': first, 'rsa-2048': first + 1 }, admin: { 'ec-p256': first + 2, 'rsa-2048': first + 3 } };
}

/** The key types an instance listens with: both for one worker, EC P-256 for the 2-worker case. */
function keyTypesOf(workers: Workers): readonly BenchKeyType[] {
  return workers === 1 ? ['ec-p256', 'rsa-2048'] : ['ec-p256'];
}

/** File-name suffix of an instance ('' or '-2w'), so the two instances of a proxy share nothing. */
const tagOf = (workers: Workers) => (workers === 1 ? '' : '-2w');

/** File-name suffix of a meshward variant: its label, so its files say which build they belong to. */
const variantTag = (v: MeshwardVariant) => `-v-${v.fileTag}`;

/** One worker: alone on the proxy core. Two workers: not pinned (every core). */
const coresOf = (workers: Workers): number | string => (workers === 1 ? PROXY_CORE : ALL_CORES);

export interface RunningProxy {
  name: ProxyName;
  workers: Workers;
  /** The mTLS port of each key type's listener (the 2-worker instances: EC P-256 only, both entries alike). */
  ports: Record<BenchKeyType, number>;
  /** Where to look when the instance answers wrongly (its error log). */
  logFile: string;
  /** The process whose tree is measured (CPU) and whose workers' RSS is reported; EC instance for meshward. */
  main: Tracked;
  /** The process serving each key type's listener (meshward runs one sidecar per identity). */
  processFor: Record<BenchKeyType, Tracked>;
  processes: Tracked[];
  /** Identity directories (Kubernetes layout) per key type: what a rotation rewrites. */
  identityDirs: Record<BenchKeyType, string>;
  /** What a rotation must do after the `..data` swap so the proxy picks the new files up. */
  reload: () => void;
}

function identityFiles(w: WorkloadFiles, withCombinedPem: boolean): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'tls.crt': fs.readFileSync(w.crt),
    'tls.key': fs.readFileSync(w.key),
    'ca.crt': fs.readFileSync(w.ca),
  };
  // HAProxy wants the chain and the key in one file.
  if (withCombinedPem) files['haproxy.pem'] = Buffer.concat([files['tls.crt']!, files['tls.key']!]);
  return files;
}

/** Writes the identity of a proxy as a new `..data` generation (used at start and by each rotation). */
export function writeIdentity(proxy: ProxyName, dir: string, w: WorkloadFiles): void {
  writeGeneration(dir, identityFiles(w, proxy === 'haproxy'));
}

function makeIdentityDirs(proxy: ProxyName, work: string, certs: BenchCertificates, tag: string): Record<BenchKeyType, string> {
  const dirs = {} as Record<BenchKeyType, string>;
  for (const kt of ['ec-p256', 'rsa-2048'] as const) {
    dirs[kt] = path.join(work, 'identity', `${proxy}${tag}-${kt}`);
    fs.rmSync(dirs[kt], { recursive: true, force: true });
    writeIdentity(proxy, dirs[kt], certs.server[kt]);
  }
  return dirs;
}

// ---- backend ----------------------------------------------------------------------------------------

function nginxTempPaths(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${path.join(dir, t)};`).join('\n');
}

export function startBackend(work: string): Promise<Tracked> {
  const conf = path.join(work, 'backend-nginx.conf');
  fs.writeFileSync(conf, `# Backend: a fixed 2-byte body, as fast as possible, so it stays out of the measurement.
worker_processes 1;
pid ${path.join(work, 'backend-nginx.pid')};
error_log ${path.join(work, 'backend-nginx.error.log')} warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
${nginxTempPaths(path.join(work, 'backend-nginx-tmp'))}
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  default_type text/plain;
  server {
    listen 127.0.0.1:${BACKEND_PORT} backlog=4096;
    location / { return 200 "ok"; }
  }
}
`);
  const t = start('backend-nginx', 'nginx', ['-e', path.join(work, 'backend-nginx.error.log'), '-c', conf, '-g', 'daemon off;'],
    { core: CLIENT_CORE, logFile: path.join(work, 'backend-nginx.log') });
  return waitForPort(BACKEND_PORT, 10_000, () => !t.exited).then(() => t);
}

// ---- nginx ------------------------------------------------------------------------------------------

/** The ports of the logging case's extra instances (clear of the baselines' 44x-46x and the variants' 500+). */
export const LOGGING_PORTS = {
  nginx: { 'ec-p256': PORT_BASE + 470, 'rsa-2048': PORT_BASE + 471 },
  meshward: { listen: { 'ec-p256': PORT_BASE + 480, 'rsa-2048': PORT_BASE + 481 }, admin: { 'ec-p256': PORT_BASE + 482, 'rsa-2048': PORT_BASE + 483 } },
};

/**
 * nginx with 1 worker; `accessLog`: the logging case's instance, on its own ports, writing an access log
 * line per request (buffered, nginx's `buffer=64k flush=1s`) with the client's certificate subject.
 */
export async function startNginx(work: string, certs: BenchCertificates, workers: Workers = 1, accessLog = false): Promise<RunningProxy> {
  const tag = accessLog ? '-log' : tagOf(workers);
  const dirs = makeIdentityDirs('nginx', work, certs, tag);
  const port = (kt: BenchKeyType) => (accessLog ? LOGGING_PORTS.nginx[kt] : proxyPort('nginx', kt, workers));
  const server = (kt: BenchKeyType) => `  server {
    listen 127.0.0.1:${port(kt)} ssl backlog=4096;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${dirs[kt]}/tls.crt;
    ssl_certificate_key ${dirs[kt]}/tls.key;
    ssl_client_certificate ${dirs[kt]}/ca.crt;
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-Client-Cert "Hash=$ssl_client_fingerprint;Subject=\\"$ssl_client_s_dn\\"";
    }
  }`;
  const conf = path.join(work, `nginx-proxy${tag}.conf`);
  const logLines = accessLog
    ? `  log_format audit '$time_iso8601 $remote_addr "$ssl_client_s_dn" "$request" $status $request_time';
  access_log ${path.join(work, `nginx-proxy${tag}.access.log`)} audit buffer=64k flush=1s;`
    : '  access_log off;';
  fs.writeFileSync(conf, `# nginx as an mTLS-terminating reverse proxy: ${workers} worker(s), upstream keep-alive, ${accessLog ? 'a buffered access log' : 'no access log'}.
worker_processes ${workers};
pid ${path.join(work, `nginx-proxy${tag}.pid`)};
error_log ${path.join(work, `nginx-proxy${tag}.error.log`)} warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
${nginxTempPaths(path.join(work, `nginx-proxy${tag}-tmp`))}
${logLines}
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  upstream app {
    server 127.0.0.1:${BACKEND_PORT};
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
${keyTypesOf(workers).map(server).join('\n')}
}
`);
  const t = start(`nginx${tag}`, 'nginx', ['-e', path.join(work, `nginx-proxy${tag}.error.log`), '-c', conf, '-g', 'daemon off;'],
    { core: coresOf(workers), logFile: path.join(work, `nginx-proxy${tag}.log`) });
  await waitForPort(port('ec-p256'), 10_000, () => !t.exited);
  return {
    name: 'nginx', workers, ports: { 'ec-p256': port('ec-p256'), 'rsa-2048': port('rsa-2048') }, logFile: path.join(work, `nginx-proxy${tag}.error.log`),
    main: t, processFor: { 'ec-p256': t, 'rsa-2048': t }, processes: [t], identityDirs: dirs, reload: () => process.kill(t.pid, 'SIGHUP'),
  };
}

// ---- HAProxy ----------------------------------------------------------------------------------------

export async function startHaproxy(work: string, certs: BenchCertificates, workers: Workers = 1): Promise<RunningProxy> {
  const dirs = makeIdentityDirs('haproxy', work, certs, tagOf(workers));
  const tag = tagOf(workers);
  const frontend = (kt: BenchKeyType) => `frontend mtls_${kt.replace('-', '_')}
  bind 127.0.0.1:${proxyPort('haproxy', kt, workers)} ssl crt ${dirs[kt]}/haproxy.pem ca-file ${dirs[kt]}/ca.crt verify required
  http-request set-header X-Forwarded-Client-Cert "Hash=%[ssl_c_sha1,hex];Subject=%[ssl_c_s_dn]"
  default_backend app
`;
  const conf = path.join(work, `haproxy${tag}.cfg`);
  fs.writeFileSync(conf, `# HAProxy as an mTLS-terminating reverse proxy: ${workers} thread(s), connection reuse to the app, no logging.
global
  nbthread ${workers}
  maxconn 8000
  hard-stop-after 30s
  tune.ssl.default-dh-param 2048

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s

${keyTypesOf(workers).map(frontend).join('\n')}
backend app
  server app 127.0.0.1:${BACKEND_PORT}
`);
  // -W: master-worker, so a rotation can reload with SIGUSR2 like a systemd reload does.
  const t = start(`haproxy${tag}`, 'haproxy', ['-W', '-db', '-f', conf], { core: coresOf(workers), logFile: path.join(work, `haproxy${tag}.log`) });
  await waitForPort(proxyPort('haproxy', 'ec-p256', workers), 10_000, () => !t.exited);
  return {
    name: 'haproxy', workers, ports: portsOf('haproxy', workers), logFile: path.join(work, `haproxy${tag}.log`),
    main: t, processFor: { 'ec-p256': t, 'rsa-2048': t }, processes: [t], identityDirs: dirs, reload: () => process.kill(t.pid, 'SIGUSR2'),
  };
}

// ---- meshward ---------------------------------------------------------------------------------------

/** 10 grants and 20 routes, shaped like a real service's policy; GET /api/v1/orders/{id} is routes[18]. */
export function benchPolicyYaml(clientId: string): string {
  const teams = ['catalog', 'cart', 'payments', 'shipping', 'search', 'reviews', 'inventory'];
  const grants = teams.map((t) => `  - identities: ["spiffe://bench.local/ns/${t}/sa/*"]\n    scopes: [${t}:read, ${t}:write]`);
  grants.push('  - identities: ["spiffe://bench.local/ns/ops/**"]\n    scopes: [admin:read]');
  grants.push('  - subjects: [{cn: legacy-batch, ou: payments}]\n    scopes: [payments:read]');
  grants.push(`  - identities: ["${clientId}"]\n    scopes: [orders:read, orders:write]`);
  const routes: string[] = [];
  for (const t of teams) {
    routes.push(`  - match: {methods: [GET, HEAD], path: /api/v1/${t}/**}\n    scope: ${t}:read`);
    routes.push(`  - match: {methods: [POST, PUT, DELETE], path: /api/v1/${t}/*}\n    scope: ${t}:write`);
  }
  routes.push('  - match: {path: /shop.v1.Admin/*}\n    scope: admin:read');
  routes.push('  - match: {methods: [GET], path: /admin/**}\n    scope: admin:read');
  routes.push('  - match: {methods: [POST], path: /api/v1/orders}\n    scope: orders:write');
  routes.push('  - match: {path: /shop.v1.Orders/*}\n    scope: orders:read');
  routes.push('  - match: {methods: [GET, HEAD], path: /api/v1/orders/*}\n    scope: orders:read');
  routes.push('  - match: {path: /healthz}\n    public: true');
  if (grants.length !== 10 || routes.length !== 20) throw new Error('the bench policy must have 10 grants and 20 routes');
  return `# Benchmark policy: 10 grants, 20 routes; the measured request (GET ${REQUEST_PATH}) is matched by routes[18].
mode: enforce
grants:
${grants.join('\n')}
routes:
${routes.join('\n')}
limits:
  - identities: ["spiffe://bench.local/ns/search/**"]
    rps: 1000
    burst: 2000
`;
}

export const MESHWARD_ADMIN_PORT: Record<BenchKeyType, number> = { 'ec-p256': PORT_BASE + 446, 'rsa-2048': PORT_BASE + 456 };
/** The admin port of the 2-worker meshward (served by its cluster primary). */
export const MESHWARD_2W_ADMIN_PORT = PORT_BASE + 466;

const meshwardAdminPort = (kt: BenchKeyType, workers: Workers) => (workers === 2 ? MESHWARD_2W_ADMIN_PORT : MESHWARD_ADMIN_PORT[kt]);

/** Every port the benchmark listens on, with `variants` meshward variants. */
export function benchPorts(variants = 0): number[] {
  const ports = [BACKEND_PORT, ...Object.values(MESHWARD_ADMIN_PORT), MESHWARD_2W_ADMIN_PORT];
  for (const p of PROXIES) ports.push(proxyPort(p, 'ec-p256'), proxyPort(p, 'rsa-2048'), proxyPort(p, 'ec-p256', 2));
  ports.push(...Object.values(LOGGING_PORTS.nginx), ...Object.values(LOGGING_PORTS.meshward.listen), ...Object.values(LOGGING_PORTS.meshward.admin));
  for (let slot = 0; slot < variants; slot++) {
    const v = variantPorts(slot);
    ports.push(...Object.values(v.listen), ...Object.values(v.admin));
  }
  return ports;
}

/** Fails with the list of ports something else already listens on (another run, another test). */
export async function assertPortsFree(ports: number[]): Promise<void> {
  const taken: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (!free) taken.push(port);
  }
  if (taken.length > 0) {
    throw new Error(`ports ${taken.join(', ')} are in use; stop what listens there or set BENCH_PORT_BASE (now ${PORT_BASE})`);
  }
}

async function waitForReady(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/readyz', timeout: 1000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          last = `/readyz ${res.statusCode}: ${body.trim().slice(0, 200)}`;
          resolve(res.statusCode ?? 0);
        });
      });
      req.on('error', (e) => {
        last = e.message;
        resolve(0);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });
    if (status === 200) return;
    if (!alive()) throw new Error(`the sidecar exited (${last})`);
    if (Date.now() > until) throw new Error(`not ready after ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What the sidecar's output says went wrong: its error lines (pino level ≥ 50 or a thrown Error), else its last lines. */
function failureLines(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const errors = lines.filter((l) => /"level":(5|6)0|^\w*Error\b|error:/i.test(l));
    return (errors.length > 0 ? errors.slice(0, 2) : lines.slice(-3)).join(' | ').slice(0, 400);
  } catch {
    return '';
  }
}

/** The sidecar's log file for an instance (by its file-name tag) and key type. */
function meshwardLogFile(work: string, kt: BenchKeyType, tag: string): string {
  return path.join(work, `meshward${tag}-${kt}.log`);
}

/** One meshward instance to start: which build, run by which node, where, with how many workers. */
interface MeshwardInstance {
  bin: string;
  node: string;
  tag: string;                                   // file-name suffix: '', '-2w' or a variant's
  workers: Workers;
  listen: Record<BenchKeyType, number>;          // only the key types of keyTypesOf(workers) are used
  admin: Record<BenchKeyType, number>;
  /** log.allowed: debug (no line per request at level info) unless the logging case asks for info. */
  allowed?: 'info' | 'debug';
}

/** The main meshward build (BENCH_MESHWARD_BIN), 1 or 2 workers, on the meshward ports. */
export function startMeshward(meshwardBin: string, work: string, certs: BenchCertificates, clientId: string, workers: Workers = 1): Promise<RunningProxy> {
  return launchMeshward({
    bin: meshwardBin, node: 'node', tag: tagOf(workers), workers, listen: portsOf('meshward', workers),
    admin: { 'ec-p256': meshwardAdminPort('ec-p256', workers), 'rsa-2048': meshwardAdminPort('rsa-2048', workers) },
  }, work, certs, clientId);
}

/** Another meshward build (a variant), one worker, EC and RSA listeners like the main one, on its slot's ports. */
export function startMeshwardVariant(v: MeshwardVariant, slot: number, work: string, certs: BenchCertificates, clientId: string): Promise<RunningProxy> {
  const ports = variantPorts(slot);
  return launchMeshward({ bin: v.bin, node: v.node, tag: variantTag(v), workers: 1, listen: ports.listen, admin: ports.admin }, work, certs, clientId);
}

/** The logging case's meshward: like the main one, but every allowed request logged at info (the default). */
export function startMeshwardLogging(meshwardBin: string, work: string, certs: BenchCertificates, clientId: string): Promise<RunningProxy> {
  const p = LOGGING_PORTS.meshward;
  return launchMeshward({ bin: meshwardBin, node: 'node', tag: '-log', workers: 1, listen: p.listen, admin: p.admin, allowed: 'info' }, work, certs, clientId);
}

/** Writes a file unless it already holds exactly this text: a running sidecar watching it would reload for nothing. */
function writeIfChanged(file: string, text: string): void {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (current !== text) fs.writeFileSync(file, text);
}

async function launchMeshward(inst: MeshwardInstance, work: string, certs: BenchCertificates, clientId: string): Promise<RunningProxy> {
  const { tag, workers } = inst;
  const dirs = makeIdentityDirs('meshward', work, certs, tag);
  // One policy file for every instance: the same policy is measured everywhere.
  const policy = path.join(work, 'meshward-policy.yaml');
  writeIfChanged(policy, benchPolicyYaml(clientId));
  const processes: Tracked[] = [];
  for (const kt of keyTypesOf(workers)) {
    const config = path.join(work, `meshward${tag}-${kt}.yaml`);
    fs.writeFileSync(config, `# meshward sidecar under benchmark (${kt} identity). Allowed requests are logged at ${inst.allowed ?? 'debug'},
# the level is info: ${inst.allowed === 'info' ? 'a line per request (its stdout is a file beside the policy)' : 'like nginx and HAProxy here, no per-request access log'}.
${workers > 1 ? `# ${workers} node:cluster workers serve the inbound port; the primary runs the admin server.\nworkers: ${workers}\n` : ''}identity:
  dir: ${dirs[kt]}
inbound:
  listen: 127.0.0.1:${inst.listen[kt]}
  app: http://127.0.0.1:${BACKEND_PORT}
policy: ${policy}
admin:
  listen: 127.0.0.1:${inst.admin[kt]}
log:
  level: info
  allowed: ${inst.allowed ?? 'debug'}
`);
    const logFile = meshwardLogFile(work, kt, tag);
    const t = start(`meshward${tag}-${kt}`, inst.node, [inst.bin, 'sidecar', '--config', config],
      { core: coresOf(workers), logFile });
    processes.push(t);
    try {
      await waitForReady(inst.admin[kt], 20_000, () => !t.exited);
      await waitForPort(inst.listen[kt], 5_000, () => !t.exited);
    } catch (err) {
      const tail = failureLines(logFile);
      const e = new Error(`${(err as Error).message}${tail ? `; log: ${tail}` : ''}`);
      (e as Error & { processes?: Tracked[] }).processes = processes;
      throw e;
    }
  }
  const ports = workers === 1 ? inst.listen : { 'ec-p256': inst.listen['ec-p256'], 'rsa-2048': inst.listen['ec-p256'] };
  return {
    name: 'meshward', workers, ports, logFile: meshwardLogFile(work, 'ec-p256', tag), main: processes[0]!, processFor: { 'ec-p256': processes[0]!, 'rsa-2048': processes[1] ?? processes[0]! },
    processes, identityDirs: dirs, reload: () => undefined };
}
