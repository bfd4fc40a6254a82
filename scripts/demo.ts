// `make demo`: meshward end to end on one machine, in plain words. A CA (`meshward ca serve`), an `orders`
// app behind its sidecar (inbound mTLS + policy), a `frontend` sidecar with an outbound listener to it
// (the demo itself plays the frontend app), both sidecars getting short-lived certificates from the CA
// through their in-process agents. It shows an allowed call, a denied call and why, the orders
// certificate, a live rotation under load, the /metrics counters that moved and how to read the series the
// dashboard and alerts use (curl against the live sidecar and CA); then it stops every
// process it started (also on Ctrl-C / SIGTERM) and exits 0 only if everything behaved as expected.
//
//   node dist/scripts/demo.js [--dir DIR]      (default certs/demo in the repo; DIR is wiped first)
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MESHWARD = join(REPO_ROOT, 'bin', 'meshward.js');
const TRUST_DOMAIN = 'example.org';
const FRONTEND_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`;
const ORDERS_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
/** Short on purpose: the agent renews at about 2/3 of it, so a rotation happens while we watch. */
const CERT_TTL = '30s';
const CALL_INTERVAL_MS = 100;
/** The whole demo must end by itself: past this, it stops everything and fails. */
const DEMO_DEADLINE_MS = 100_000;
const ROTATION_WAIT_MS = 60_000;
/** Marks a folder as the demo's own, so --dir never wipes a folder it did not create. */
const MARKER = '.meshward-demo';

class DemoFailure extends Error {}

// ---------------------------------------------------------------------------------------------------
// Output: plain sentences on stdout; the children's own JSON logs go to DIR/logs/.

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function step(n: number, title: string): void {
  say();
  say(`${n}. ${title}`);
}

/** A path as the user would type it from here: relative inside the current folder, absolute outside it. */
function rel(p: string): string {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
}

// ---------------------------------------------------------------------------------------------------
// Processes the demo starts: tracked so that every one of them is stopped, whatever happens.

interface LogLine {
  event?: string;
  [key: string]: unknown;
}

interface Started {
  name: string;
  child: ChildProcess;
  logs: LogLine[];
  exited: Promise<void>;
  /** Resolves with the first log line matching `pred`, looking at lines from index `from` on (default all). */
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number, from?: number): Promise<LogLine>;
}

const started: Started[] = [];
const helpers = new Set<ChildProcess>();

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function startProcess(name: string, args: string[], logFile: string): Started {
  const out: WriteStream = createWriteStream(logFile);
  // Same process group as the demo: a Ctrl-C in the terminal reaches them too, and a caller that runs
  // the demo in its own group can check that nothing of it is left.
  const child = spawn(process.execPath, [MESHWARD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out.write(chunk);
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => out.write(chunk));
  const exited = new Promise<void>((done) =>
    child.on('exit', () => {
      for (const w of waiters) w();
      done();
    }),
  );
  void exited.then(() => out.end());
  const proc: Started = {
    name,
    child,
    logs,
    exited,
    waitFor: (pred, what, timeoutMs = 30_000, from = 0) =>
      new Promise((resolveWait, reject) => {
        const check = () => {
          const found = logs.slice(from).find(pred);
          if (found) {
            finish();
            resolveWait(found);
          } else if (!isRunning(child)) {
            finish();
            reject(new DemoFailure(`the ${name} exited (code ${child.exitCode ?? child.signalCode}) before ${what}; see ${rel(logFile)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new DemoFailure(`the ${name} did not report ${what} within ${timeoutMs / 1000}s; see ${rel(logFile)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
  started.push(proc);
  return proc;
}

/** Runs a short meshward command (ca init, token create, inspect) and returns its stdout. */
function meshward(args: string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = execFile(process.execPath, [MESHWARD, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      helpers.delete(child);
      if (err) reject(new DemoFailure(`meshward ${args[0]} ${args[1] ?? ''} failed: ${(stderr || err.message).trim()}`));
      else resolveRun(stdout);
    });
    helpers.add(child);
  });
}

let stopping: Promise<string[]> | undefined;

/** Stops everything the demo started (SIGTERM, then SIGKILL after 10 s); returns "name (pid N)" for each. */
function stopAll(): Promise<string[]> {
  stopping ??= (async () => {
    for (const h of helpers) h.kill('SIGKILL');
    // Clients first, then the server they call, then the CA they renew from: nobody logs a needless error.
    const order = [...started].reverse();
    const names: string[] = [];
    for (const p of order) {
      names.push(`${p.name} (pid ${p.child.pid})`);
      if (!isRunning(p.child)) continue;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exited;
      clearTimeout(timer);
    }
    await closeOrdersApp();
    return names;
  })();
  return stopping;
}

// ---------------------------------------------------------------------------------------------------
// The orders app: plain HTTP, answers with the identity headers its sidecar set.

let ordersApp: Server | undefined;
let ordersAppRequests = 0;
/** Hash= of the last x-forwarded-client-cert the app received: the SHA-256 of the caller's certificate. */
let lastCallerHash = '';

async function startOrdersApp(): Promise<number> {
  ordersApp = createServer((req, res) => {
    ordersAppRequests++;
    lastCallerHash = /Hash=([0-9a-f]+)/.exec(String(req.headers['x-forwarded-client-cert'] ?? ''))?.[1] ?? '';
    const id = /^\/orders\/([\w-]+)/.exec(req.url ?? '')?.[1];
    const body = {
      order: id ? { id, item: 'green tea', status: 'shipped' } : undefined,
      request: `${req.method} ${req.url}`,
      caller: req.headers['x-mesh-client-id'] ?? null,
      scopes: req.headers['x-mesh-scopes'] ?? null,
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => ordersApp!.listen(0, '127.0.0.1', r));
  return (ordersApp.address() as AddressInfo).port;
}

function closeOrdersApp(): Promise<void> {
  if (!ordersApp?.listening) return Promise.resolve();
  return new Promise((r) => {
    ordersApp!.closeAllConnections();
    ordersApp!.close(() => r());
  });
}

// ---------------------------------------------------------------------------------------------------
// Small clients.

interface Reply {
  status: number;
  body: string;
}

function call(port: number, method: string, path: string, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolveCall, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, timeout: timeoutMs }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolveCall({ status: res.statusCode ?? 0, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function json(body: string): Record<string, unknown> {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = `: ${(err as Error).message}`;
    }
    if (Date.now() > deadline) throw new DemoFailure(`timed out waiting for ${what}${last}`);
    await sleep(200);
  }
}

const portOf = (address: unknown) => Number(String(address).split(':').pop());

/**
 * The serial of the certificate the orders sidecar presents on a new connection, asking as the frontend
 * would (its certificate, the CA bundle, and the SPIFFE ID checked instead of a host name).
 */
function presentedSerial(port: number, identityDir: string, bundle: string): Promise<string> {
  return new Promise((resolveSerial, reject) => {
    // Resolve the Secret-style `..data` link once, so certificate and key come from the same generation.
    const files = existsSync(join(identityDir, '..data')) ? realpathSync(join(identityDir, '..data')) : identityDir;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: readFileSync(join(files, 'tls.crt')),
      key: readFileSync(join(files, 'tls.key')),
      ca: readFileSync(bundle),
      checkServerIdentity: (_host, cert) => (cert.subjectaltname?.includes(`URI:${ORDERS_ID}`) ? undefined : new Error(`the server is not ${ORDERS_ID}`)),
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS probe timed out')));
    socket.once('secureConnect', () => {
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^(00)+/, '');
      socket.end();
      resolveSerial(serial);
    });
    socket.once('error', reject);
  });
}

function serialOfFile(path: string): string {
  return new X509Certificate(readFileSync(path)).serialNumber.toLowerCase().replace(/^(00)+/, '');
}

// ---------------------------------------------------------------------------------------------------
// Metrics: the counters the demo moved.

const WATCHED = ['meshward_requests_total', 'meshward_reloads_total', 'meshward_handshake_failures_total'];

async function counters(adminPort: number): Promise<Map<string, number>> {
  const r = await call(adminPort, 'GET', '/metrics');
  const out = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && WATCHED.includes(m[1]!)) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

function moved(before: Map<string, number>, after: Map<string, number>): string[] {
  const lines: string[] = [];
  for (const [series, value] of after) {
    const was = before.get(series) ?? 0;
    if (value !== was) lines.push(`${series} ${value}   (+${value - was} during the demo)`);
  }
  return lines;
}

/**
 * The series the Grafana dashboard and the alert rules (deploy/observability/) are built on, read live the
 * way a user would with curl (the command is printed, the same GET is made here). Returns what is missing.
 */
async function showDashboardSeries(sidecarAdmin: number, caAdmin: number): Promise<string[]> {
  const sources = [
    { what: 'orders sidecar', port: sidecarAdmin, series: ['meshward_certificate_expiry_seconds', 'meshward_crl_next_update_timestamp_seconds', 'meshward_reloads_total', 'meshward_handshake_failures_total'] },
    { what: 'CA', port: caAdmin, series: ['meshward_ca_sign_requests_total', 'meshward_ca_crl_next_update_seconds'] },
  ];
  const problems: string[] = [];
  say('   The series the dashboard and the alerts (deploy/observability/) read; while the demo runs, try:');
  for (const { what, port, series } of sources) {
    say(`     $ curl -s http://127.0.0.1:${port}/metrics | grep -E '^(${series.join('|')})'   # ${what}`);
    const body = (await call(port, 'GET', '/metrics')).body;
    const lines = body.split('\n').filter((l) => series.some((n) => l.startsWith(`${n}{`) || l.startsWith(`${n} `)));
    for (const l of lines) say(`       ${l}`);
    // A labelled counter that never moved has no sample (handshake failures here): only gauges must show.
    for (const gauge of series.filter((n) => !n.endsWith('_total'))) {
      if (!lines.some((l) => l.startsWith(gauge))) problems.push(`the ${what} does not export ${gauge}`);
    }
  }
  say('     (one PromQL query per series: README.md, "What to watch"; all of them: docs/metrics.md)');
  return problems;
}

// ---------------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): { dir: string; isDefault: boolean } {
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--dir' && argv[i + 1]) dir = argv[++i];
    else if (a.startsWith('--dir=')) dir = a.slice('--dir='.length);
    else if (a === '--help' || a === '-h') {
      say('usage: node dist/scripts/demo.js [--dir DIR]   (default certs/demo; DIR is wiped and rebuilt)');
      process.exit(0);
    } else {
      process.stderr.write(`demo: unknown argument ${a}; usage: node dist/scripts/demo.js [--dir DIR]\n`);
      process.exit(2);
    }
  }
  if (dir === undefined) return { dir: join(REPO_ROOT, 'certs', 'demo'), isDefault: true };
  return { dir: resolve(dir), isDefault: false };
}

/** Wipes the demo folder, but never a folder the demo did not make (a typo in --dir must not delete data). */
function prepareDir(dir: string, isDefault: boolean): void {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !isDefault && !existsSync(join(dir, MARKER))) {
    throw new DemoFailure(`${dir} is not empty and was not made by the demo: pass an empty or new folder to --dir`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(join(dir, MARKER), 'made by scripts/demo.ts; wiped at every run\n');
}

async function demo(dir: string, isDefault: boolean): Promise<void> {
  const t0 = Date.now();
  prepareDir(dir, isDefault);
  const caDir = join(dir, 'ca');
  const logs = join(dir, 'logs');
  say('meshward demo: two services, frontend → orders, each behind its own meshward sidecar.');
  say(`Everything is written to ${rel(dir)} (wiped first); the processes' JSON logs go to ${rel(logs)}.`);

  // 1. The CA.
  step(1, 'A certificate authority');
  await meshward(['ca', 'init', '--dir', caDir, '--trust-domain', TRUST_DOMAIN]);
  say(`   created a root and an intermediate CA for trust domain ${TRUST_DOMAIN} in ${rel(caDir)}`);
  const ca = startProcess('CA server', ['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], join(logs, 'ca-server.log'));
  const caAddress = String((await ca.waitFor((l) => l.event === 'listening', 'that it listens')).address);
  const caAdmin = Number((await ca.waitFor((l) => l.event === 'admin_listening', 'that its admin port listens')).port);
  say(`   the CA server (meshward ca serve) is listening on ${caAddress} (gRPC over TLS), /metrics on 127.0.0.1:${caAdmin}`);
  const services = [
    { name: 'orders', id: ORDERS_ID },
    { name: 'frontend', id: FRONTEND_ID },
  ];
  for (const s of services) {
    mkdirSync(join(dir, s.name), { recursive: true });
    const token = (await meshward(['token', 'create', '--ca-dir', caDir, '--spiffe-id', s.id, '--ttl', '5m'])).trim();
    writeFileSync(join(dir, s.name, 'bootstrap.token'), `${token}\n`, { mode: 0o600 });
  }
  say(`   made a one-time bootstrap token for each service: ${ORDERS_ID} and ${FRONTEND_ID}`);

  // 2. The two services.
  step(2, 'Two services, each with a sidecar that gets its certificate from the CA');
  const appPort = await startOrdersApp();
  say(`   the orders app (plain HTTP, it answers with the caller identity it received) is on 127.0.0.1:${appPort}`);
  const provision = (id: string) => ({
    ca: caAddress,
    bundle: '../ca/bundle.crt',
    tokenFile: './bootstrap.token',
    spiffeId: id,
    ttl: CERT_TTL,
  });
  writeFileSync(
    join(dir, 'orders', 'policy.yaml'),
    stringify({
      mode: 'enforce',
      grants: [
        { identities: [FRONTEND_ID], scopes: ['orders:read'] },
        { identities: [`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders-admin`], scopes: ['orders:read', 'orders:write'] },
      ],
      routes: [
        { match: { methods: ['GET', 'HEAD'], path: '/orders/**' }, scope: 'orders:read' },
        { match: { methods: ['POST', 'PUT', 'DELETE'], path: '/orders/**' }, scope: 'orders:write' },
      ],
    }),
  );
  const limits = { drainTimeout: '2s' };
  const ordersConfig = join(dir, 'orders', 'sidecar.yaml');
  writeFileSync(
    ordersConfig,
    stringify({
      identity: { dir: './identity', provision: provision(ORDERS_ID) },
      inbound: { listen: '127.0.0.1:0', app: `http://127.0.0.1:${appPort}` },
      policy: './policy.yaml',
      admin: { listen: '127.0.0.1:0' },
      limits,
    }),
  );
  const orders = startProcess('orders sidecar', ['sidecar', '--config', ordersConfig], join(logs, 'orders-sidecar.log'));
  const ordersPort = portOf((await orders.waitFor((l) => l.event === 'inbound_listening', 'its inbound listener')).address);
  const ordersAdmin = portOf((await orders.waitFor((l) => l.event === 'admin_listening', 'its admin server')).address);
  const ordersCert = await orders.waitFor((l) => l.event === 'credentials_loaded', 'its first certificate');
  say(`   orders sidecar: mutual TLS on 127.0.0.1:${ordersPort} in front of the orders app; policy ${rel(join(dir, 'orders', 'policy.yaml'))}:`);
  say('     GET /orders/** needs scope orders:read, POST/PUT/DELETE need orders:write;');
  say('     the frontend holds orders:read only (orders:write is granted to .../sa/orders-admin)');
  say(`     its agent got a ${CERT_TTL} certificate for ${ORDERS_ID} (serial ${String(ordersCert.serial)})`);

  const frontendConfig = join(dir, 'frontend', 'sidecar.yaml');
  writeFileSync(
    frontendConfig,
    stringify({
      identity: { dir: './identity', provision: provision(FRONTEND_ID) },
      outbound: [{ listen: '127.0.0.1:0', upstream: `127.0.0.1:${ordersPort}`, identity: ORDERS_ID }],
      admin: { listen: '127.0.0.1:0' },
      limits,
    }),
  );
  const frontend = startProcess('frontend sidecar', ['sidecar', '--config', frontendConfig], join(logs, 'frontend-sidecar.log'));
  const outboundPort = portOf((await frontend.waitFor((l) => l.event === 'outbound_listening', 'its outbound listener')).address);
  const frontendAdmin = portOf((await frontend.waitFor((l) => l.event === 'admin_listening', 'its admin server')).address);
  const frontendCert = await frontend.waitFor((l) => l.event === 'credentials_loaded', 'its first certificate');
  say(`   frontend sidecar: the frontend app (played by this demo) calls plain http://127.0.0.1:${outboundPort};`);
  say(`     the sidecar carries the call over mutual TLS to the orders sidecar and insists it proves ${ORDERS_ID}`);
  say(`     its agent got a ${CERT_TTL} certificate for ${FRONTEND_ID} (serial ${String(frontendCert.serial)})`);
  for (const [name, port] of [['orders', ordersAdmin], ['frontend', frontendAdmin]] as const) {
    await until(`the ${name} sidecar to be ready (/readyz)`, async () => ((await call(port, 'GET', '/readyz')).status === 200 ? true : undefined), 30_000);
  }
  const metricsBefore = { orders: await counters(ordersAdmin), frontend: await counters(frontendAdmin) };

  const problems: string[] = [];

  // 3. An allowed call.
  step(3, 'An allowed call: the frontend asks for GET /orders/42');
  const allowed = await call(outboundPort, 'GET', '/orders/42');
  const seen = json(allowed.body);
  say(`   → HTTP ${allowed.status}; the orders app saw caller ${String(seen.caller)} with scopes "${String(seen.scopes)}"`);
  if (allowed.status === 200) say(`   and answered ${JSON.stringify(seen.order)}`);
  if (allowed.status !== 200) problems.push(`the allowed call answered ${allowed.status} instead of 200: ${allowed.body}`);
  else if (seen.caller !== FRONTEND_ID || seen.scopes !== 'orders:read') {
    problems.push(`the orders app saw caller ${String(seen.caller)} with scopes ${String(seen.scopes)}, expected ${FRONTEND_ID} with orders:read`);
  }

  // 4. A denied call.
  step(4, 'A denied call: the frontend tries DELETE /orders/42');
  const appSawBefore = ordersAppRequests;
  const denied = await call(outboundPort, 'DELETE', '/orders/42');
  const why = json(denied.body);
  say(`   → HTTP ${denied.status} ${String(why.error)}: ${String(why.reason)} (decided by policy rule ${String(why.rule)})`);
  say(`   the orders sidecar refused it on the app's behalf: the orders app ${ordersAppRequests === appSawBefore ? 'never saw the request' : 'DID see the request'}`);
  if (denied.status !== 403) problems.push(`the denied call answered ${denied.status} instead of 403: ${denied.body}`);
  else if (typeof why.reason !== 'string' || typeof why.rule !== 'string') problems.push(`the 403 did not say why: ${denied.body}`);
  if (ordersAppRequests !== appSawBefore) problems.push('the denied request reached the orders app');

  // 5. The orders certificate.
  const ordersTlsCrt = join(dir, 'orders', 'identity', 'tls.crt');
  step(5, `The orders certificate: meshward inspect ${rel(ordersTlsCrt)}`);
  const described = await meshward(['inspect', ordersTlsCrt]);
  const [leafBlock = '', ...rest] = described.split(/\n(?=\[\d+\] )/);
  const keep = ['identity', 'issuer', 'serial', 'not before', 'not after', 'time left', 'key type', 'extended key usage', 'issued by'];
  for (const line of leafBlock.split('\n')) {
    const key = /^ {2}(\S+(?: \S+)*?) {2,}/.exec(line)?.[1];
    if (line.startsWith('[') || (key !== undefined && keep.includes(key))) say(`   ${line}${key === 'not before' ? '   (set 1 minute back, for clock skew)' : ''}`);
  }
  for (const block of rest) say(`   ${block.split('\n')[0]}: ${/identity\s+(.*)/.exec(block)?.[1] ?? ''}`);

  // 6. A live rotation under load.
  step(6, `A live rotation: the frontend calls GET /orders/1 every ${CALL_INTERVAL_MS} ms while the orders agent renews its certificate`);
  const bundle = join(caDir, 'bundle.crt');
  const ordersIdentity = join(dir, 'orders', 'identity');
  const frontendIdentity = join(dir, 'frontend', 'identity');
  // Only renewals from now on count: on a slow machine one may already have happened before the loop.
  const currentSerial = (p: Started) => String([...p.logs].reverse().find((l) => /^credentials_(loaded|reloaded)$/.test(l.event ?? ''))?.serial);
  const ordersFrom = orders.logs.length;
  const frontendFrom = frontend.logs.length;
  const frontendSerialA = currentSerial(frontend);
  const serialA = await until('the serial the orders sidecar presents', () => presentedSerial(ordersPort, frontendIdentity, bundle), 10_000);
  say(`   the orders sidecar presents serial ${serialA}; its agent renews at about 2/3 of the ${CERT_TTL} lifetime`);
  const loop = { calls: 0, failed: 0, firstFailure: '' };
  let running = true;
  const caller = (async () => {
    while (running) {
      const tick = Date.now();
      loop.calls++;
      try {
        const r = await call(outboundPort, 'GET', '/orders/1');
        if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body}`);
      } catch (err) {
        loop.failed++;
        loop.firstFailure ||= (err as Error).message;
      }
      await sleep(Math.max(0, CALL_INTERVAL_MS - (Date.now() - tick)));
    }
  })();
  const rotationStart = Date.now();
  let serialB = '';
  let frontendSerialB = '';
  let rotationSeconds = '';
  try {
    // The sidecar says it swapped, and a new connection gets the new certificate.
    await orders.waitFor((l) => l.event === 'credentials_reloaded' && l.serial !== serialA, 'a renewed certificate', ROTATION_WAIT_MS, ordersFrom);
    serialB = await until('the orders sidecar to present the renewed certificate', async () => {
      const s = await presentedSerial(ordersPort, frontendIdentity, bundle);
      return s !== serialA ? s : undefined;
    }, 10_000);
    rotationSeconds = ((Date.now() - rotationStart) / 1000).toFixed(1);
    // The frontend's certificate was issued at the same time, so it is renewed now too: its outbound
    // connections must switch to it (the orders app sees the caller's certificate hash in x-forwarded-client-cert).
    const reloaded = await frontend.waitFor((l) => l.event === 'credentials_reloaded' && l.serial !== frontendSerialA, 'a renewed certificate', ROTATION_WAIT_MS, frontendFrom);
    frontendSerialB = String(reloaded.serial);
    const fingerprint = new X509Certificate(readFileSync(join(frontendIdentity, 'tls.crt'))).fingerprint256.replace(/:/g, '').toLowerCase();
    await until('the orders app to see the frontend\'s renewed certificate', async () => (lastCallerHash === fingerprint ? true : undefined), 10_000);
    await sleep(1000); // keep calling a moment on the new certificates
  } finally {
    running = false;
    await caller;
  }
  const onDisk = serialOfFile(join(ordersIdentity, 'tls.crt'));
  say(`   orders:   serial ${serialA} → serial ${serialB}, ${loop.calls} calls, ${loop.failed} failed`);
  say(`             (renewed ${rotationSeconds}s into the loop; new connections get the new certificate)`);
  say(`   frontend: serial ${frontendSerialA} → serial ${frontendSerialB}, renewed too;`);
  say('             the orders app now sees the new frontend certificate in x-forwarded-client-cert');
  if (loop.failed > 0) problems.push(`${loop.failed} of ${loop.calls} calls failed during the rotation (first: ${loop.firstFailure})`);
  if (serialB === serialA || onDisk !== serialB) problems.push(`the orders serial did not change as expected (presented ${serialB}, on disk ${onDisk})`);

  // 7. Metrics.
  step(7, 'The /metrics counters that moved during the demo');
  const after = { orders: await counters(ordersAdmin), frontend: await counters(frontendAdmin) };
  for (const [name, port] of [['orders', ordersAdmin], ['frontend', frontendAdmin]] as const) {
    say(`   ${name} sidecar, http://127.0.0.1:${port}/metrics:`);
    const lines = moved(metricsBefore[name], after[name]);
    for (const l of lines.length > 0 ? lines : ['(no request, reload or handshake-failure counter moved)']) say(`     ${l}`);
  }
  const allow = after.orders.get(`meshward_requests_total{decision="allow",route="routes[0]",identity="${FRONTEND_ID}"}`);
  if (allow === undefined) problems.push('the orders sidecar did not count the allowed calls in meshward_requests_total');
  problems.push(...(await showDashboardSeries(ordersAdmin, caAdmin)));

  // 8. Stop.
  step(8, 'Stopping everything the demo started');
  const stopped = await stopAll();
  say(`   stopped ${stopped.join(', ')} and the orders app`);
  say();
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  if (problems.length > 0) {
    say(`Demo FAILED after ${seconds}s:`);
    for (const p of problems) say(`  - ${p}`);
    throw new DemoFailure('see above');
  }
  say(`Demo passed in ${seconds}s: allowed call 200, denied call 403, serial changed, ${loop.failed} failed calls.`);
}

async function main(): Promise<void> {
  const { dir, isDefault } = parseArgs(process.argv.slice(2));
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    say();
    say(`demo: ${signal}: stopping everything it started...`);
    void stopAll().then((names) => {
      say(`demo: stopped ${names.length > 0 ? names.join(', ') : 'nothing (nothing was running)'}`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const deadline = setTimeout(() => {
    say();
    say(`Demo FAILED: it did not finish within ${DEMO_DEADLINE_MS / 1000}s; stopping everything it started.`);
    void stopAll().then(() => process.exit(1));
  }, DEMO_DEADLINE_MS);
  try {
    await demo(dir, isDefault);
    clearTimeout(deadline);
    process.exitCode = 0;
  } catch (err) {
    clearTimeout(deadline);
    if (interrupted) return;
    if (!(err instanceof DemoFailure && err.message === 'see above')) {
      say();
      say(`Demo FAILED: ${err instanceof DemoFailure ? err.message : (err as Error).stack ?? String(err)}`);
    }
    const alreadyStopped = stopping !== undefined;
    const names = await stopAll();
    if (!alreadyStopped && names.length > 0) say(`stopped ${names.join(', ')} and the orders app`);
    process.exitCode = 1;
  }
}

void main();
