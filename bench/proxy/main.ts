// The proxy benchmark (issue 6, item 1): meshward against nginx and HAProxy as mTLS-terminating proxies,
// and against the app reached directly, on 127.0.0.1 with the same load generator (wrk), backend (nginx
// returning 2 bytes) and certificates for every case. Each proxy is pinned alone to core 1; wrk, the
// backend and this script share core 0 (the 2-worker case runs separate 2-worker instances on both cores,
// not pinned). Rounds are interleaved (every case once per round, order
// rotated) and the median round is reported. Run through bench/proxy.sh, which installs the tools and
// builds the LD_PRELOAD library first. Prints one markdown table and writes bench/results/proxy-latest.md
// plus a dated copy (BENCH_RESULTS_NAME=effects: effects-<stamp>.md only).
// BENCH_CASES picks the parts that run; BENCH_MESHWARD_VARIANTS adds other meshward builds as columns,
// measured in the keep-alive (1 worker) and handshake parts in the same rounds (bench/effects.sh).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CLIENT_ID, makeCertificates, type BenchCertificates, type BenchKeyType } from './certs.js';
import { busyPercent, readCoreTimes } from './cpu.js';
import { openIdleConnections } from './idle.js';
import { pacedLatency } from './paced.js';
import {
  ALL_CORES, aloneOnCore, cpuTicks, killAllNow, rssSplitMb, sampleRss, servingProcesses, setPidFile, sleep, stop, stopAll, TICKS_PER_SECOND, workerRssMb, type Tracked,
} from './processes.js';
import { renderReport, variantColumn, type CaseName, type Figures, type LoadRun, type LoggingInstance, type Measured, type VariantColumn } from './report.js';
import { parseCases, parseVariants, type BenchCase } from './selection.js';
import {
  assertPortsFree, BACKEND_PORT, benchPorts, CLIENT_CORE, PROXIES, PROXY_CORE, proxyPort, REQUEST_PATH, startBackend, startHaproxy,
  startMeshward, startMeshwardLogging, startMeshwardVariant, startNginx, writeIdentity, type ProxyName, type RunningProxy,
} from './servers.js';
import { failures, requestsPerSecond, runWrk, type WrkResult } from './wrk.js';

const num = (name: string, fallback: number) => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};

const settings = {
  rounds: num('BENCH_ROUNDS', 3),
  seconds: num('BENCH_SECONDS', 5),
  connections: num('BENCH_CONNECTIONS', 50),
  handshakeConnections: num('BENCH_HANDSHAKE_CONNECTIONS', 16),
  pacedRate: num('BENCH_PACED_RATE', 1000),
  pacedSeconds: num('BENCH_PACED_SECONDS', 5),
  idleConnections: num('BENCH_IDLE_CONNECTIONS', 1000),
  rotations: num('BENCH_ROTATIONS', 20),
  // Each CLI `cert issue` costs about a second of CPU: a few distinct certificates, used in turn, keep
  // every rotation a real change (consecutive ones always differ) without a minute of issuing.
  rotationCerts: num('BENCH_ROTATION_CERTS', 5),
  rotationIntervalMs: num('BENCH_ROTATION_INTERVAL_MS', 750),
  deadlineMinutes: num('BENCH_DEADLINE_MINUTES', 14),
  rsaClientKey: rsaClientKeyType(process.env.BENCH_RSA_CLIENT_KEY),
  // The 2-worker case is not pinned: wrk gets a thread per core like the proxies.
  twoWorkerWrkThreads: 2,
  cases: parseCases(process.env.BENCH_CASES),
};
const ran = (c: BenchCase) => settings.cases.includes(c);

function rsaClientKeyType(v: string | undefined): BenchKeyType {
  if (v === undefined || v === '' || v === 'ec-p256') return 'ec-p256';
  if (v === 'rsa-2048') return 'rsa-2048';
  throw new Error(`BENCH_RSA_CLIENT_KEY must be ec-p256 or rsa-2048, got ${v}`);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const work = path.join(root, 'bench', 'work', 'proxy');
const preload = path.join(root, 'bench', 'work', 'clientcert.so');
const luaScript = path.join(root, 'bench', 'proxy', 'report.lua');
// Another build can be measured against the same baselines, e.g. to record the effect of a change.
const meshwardBin = path.resolve(process.env.BENCH_MESHWARD_BIN ?? path.join(root, 'bin', 'meshward.js'));
// Other builds measured beside it, a column each (keep-alive and handshake cases only): bench/effects.sh.
const variants = parseVariants(process.env.BENCH_MESHWARD_VARIANTS);

function log(message: string): void {
  process.stderr.write(`[proxy-bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Each round visits every case; the order rotates so no case always runs first or last. */
function rotated<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Every process of every proxy: all but the measured one are frozen during a measurement. */
const proxyProcesses: Tracked[] = [];

interface LoadOptions {
  connections: number;
  seconds: number;
  headers?: string[];
  cert?: { crt: string; key: string };
  noResume?: boolean;
  keyType?: BenchKeyType;          // which listener (meshward runs one process per identity)
  clientCores?: number | string;   // where wrk runs (CLIENT_CORE unless given)
  threads?: number;                // wrk -t (1 unless given)
}

/** A wrk run against one proxy (or the backend), with the proxy's CPU time and RSS measured around it. */
async function measuredWrk(proxy: RunningProxy | undefined, url: string, opts: LoadOptions): Promise<LoadRun> {
  // meshward serves each key type from its own process; nginx and HAProxy from one.
  const active = proxy?.processFor[opts.keyType ?? 'ec-p256'];
  const pid = active?.pid;
  const thaw = aloneOnCore(proxyProcesses, active);
  try {
    return await measuredWrkAlone(pid, url, opts);
  } finally {
    thaw();
  }
}

async function measuredWrkAlone(pid: number | undefined, url: string, opts: LoadOptions): Promise<LoadRun> {
  const stopRss = pid !== undefined ? sampleRss(pid) : undefined;
  const ticks0 = pid !== undefined ? cpuTicks(pid) : 0;
  const cores0 = readCoreTimes();
  const wrk = await runWrk({
    url, connections: opts.connections, seconds: opts.seconds, core: opts.clientCores ?? CLIENT_CORE, threads: opts.threads, script: luaScript,
    headers: opts.headers, noResume: opts.noResume,
    clientCert: opts.cert ? { ...opts.cert, preload } : undefined,
  });
  const cores1 = readCoreTimes();
  const ticks1 = pid !== undefined ? cpuTicks(pid) : 0;
  const maxRssMb = stopRss?.();
  return {
    wrk,
    cpuUsPerRequest: pid !== undefined && wrk.requests > 0 ? ((ticks1 - ticks0) * 1e6) / TICKS_PER_SECOND / wrk.requests : undefined,
    maxRssMb,
    clientCoreBusy: busyPercent(cores0, cores1, `cpu${CLIENT_CORE}`),
    proxyCoreBusy: busyPercent(cores0, cores1, `cpu${PROXY_CORE}`),
  };
}

function describeRun(r: LoadRun, withCpu = true, notPinned = false): string {
  const w = r.wrk;
  const errs = failures(w);
  return `${Math.round(requestsPerSecond(w))} req/s, p50 ${(w.p50_us / 1000).toFixed(3)} ms, p99 ${(w.p99_us / 1000).toFixed(3)} ms` +
    (withCpu && r.cpuUsPerRequest !== undefined ? `, ${r.cpuUsPerRequest.toFixed(1)} µs CPU/req` : '') +
    (errs > 0 ? `, ${errs} errors (connect ${w.connect_errors}, read ${w.read_errors}, write ${w.write_errors}, status ${w.status_errors}, timeout ${w.timeouts})` : '') +
    (notPinned
      ? `; core ${CLIENT_CORE} ${r.clientCoreBusy.toFixed(0)}% busy, core ${PROXY_CORE} ${r.proxyCoreBusy.toFixed(0)}% (proxy, wrk and backend on both)`
      : `; client core ${r.clientCoreBusy.toFixed(0)}% busy, proxy core ${r.proxyCoreBusy.toFixed(0)}%`);
}

/** The served certificate's fingerprint, to check that a rotation really reached new handshakes. */
function servedFingerprint(port: number, cert: { crt: string; key: string }): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: fs.readFileSync(cert.crt), key: fs.readFileSync(cert.key), rejectUnauthorized: false });
    const t = setTimeout(() => s.destroy(new Error('timeout')), 5000);
    s.once('secureConnect', () => {
      clearTimeout(t);
      resolve(s.getPeerX509Certificate()?.fingerprint256 ?? '');
      s.destroy();
    });
    s.once('error', (e) => {
      clearTimeout(t);
      resolve(`error: ${e.message}`);
    });
  });
}

function leafFingerprint(file: string): string {
  return new X509Certificate(fs.readFileSync(file)).fingerprint256;
}

/** A tool's version from its banner (nginx prints it on stderr, wrk exits non-zero after printing it). */
function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? '?';
}

/** What the parts of a run share: the figures being filled in, the certificates and every started instance. */
interface Run {
  figures: Figures;
  certs: BenchCertificates;
  clientEc: { crt: string; key: string };
  proxies: Map<Measured, RunningProxy>;
}

const isVariant = (c: CaseName): c is VariantColumn => c.startsWith('meshward (');

/** The one-worker instances that started and answered: the baselines, then the variants. */
function running(run: Run): Measured[] {
  const all: Measured[] = [...PROXIES, ...variants.map((v) => variantColumn(v.label))];
  return all.filter((p) => run.proxies.has(p) && run.figures.problems[p] === undefined);
}

/** nginx, HAProxy and meshward: the parts that variants take no part in measure only these. */
const baselines = (run: Run): ProxyName[] => running(run).filter((p): p is ProxyName => !isVariant(p));

function urlOf(run: Run, c: CaseName, kt: BenchKeyType = 'ec-p256'): string {
  return c === 'direct' ? `http://127.0.0.1:${BACKEND_PORT}${REQUEST_PATH}` : `https://127.0.0.1:${run.proxies.get(c)!.ports[kt]}${REQUEST_PATH}`;
}

/** Logs a round's line and keeps it for the report. */
function roundLine(run: Run, line: string): void {
  log(line);
  run.figures.rounds.push(line);
}

/** The node binary's version ("?" when it does not run): the report says what ran each variant. */
function nodeVersion(node: string): string {
  return version(node, ['--version'], /v(\S+)/);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  await assertPortsFree(benchPorts(variants.length));
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  setPidFile(path.join(root, 'bench', 'work', 'proxy-pids'));

  const figures: Figures = {
    startedAt, settings, notes: [], rounds: [], problems: {},
    variants: variants.map((v) => ({ column: variantColumn(v.label), bin: v.bin, node: v.node, nodeVersion: nodeVersion(v.node) })),
    keepAlive: {}, logging: {}, twoWorkers: { keepAlive: {}, rss: {}, problems: {} }, handshakes: { 'ec-p256': {}, 'rsa-2048': {} }, paced: {}, rss: {}, rotation: {},
    environment: {
      cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, node: process.version,
      nginx: version('nginx', ['-v'], /nginx\/(\S+)/), haproxy: version('haproxy', ['-v'], /version (\S+)/),
      wrk: version('wrk', ['-v'], /wrk (?:debian\/)?(\S+)/), openssl: version('openssl', ['version'], /OpenSSL (\S+)/),
      certificates: '', backend: 'nginx (1 worker on core 0) answering every path with a fixed 2-byte body',
    },
  };
  log(`parts: ${settings.cases.join(', ')}` + (variants.length > 0 ? `; variants: ${figures.variants.map((v) => v.column).join(', ')}` : ''));

  log('making certificates');
  const certs: BenchCertificates = await makeCertificates(root, work, Math.max(2, Math.min(settings.rotationCerts, settings.rotations)), settings.rsaClientKey);
  figures.environment.certificates = certs.source;
  log(`certificates: ${certs.source}`);
  const run: Run = { figures, certs, clientEc: { crt: certs.client['ec-p256'].crt, key: certs.client['ec-p256'].key }, proxies: new Map() };

  log('starting the backend, nginx and HAProxy');
  await startBackend(work);
  run.proxies.set('nginx', await startNginx(work, certs));
  run.proxies.set('haproxy', await startHaproxy(work, certs));
  await startMeshwards(run);
  for (const p of run.proxies.values()) proxyProcesses.push(...p.processes);
  await probeAll(run);

  await sleep(1000);
  for (const p of running(run)) figures.rss[p] = { idleMb: workerRssMb(run.proxies.get(p)!.main.pid) };

  const cases: CaseName[] = ['direct', ...running(run)];
  log(`warm-up (2 s per case): ${cases.join(', ')}`);
  for (const c of cases) {
    await measuredWrk(run.proxies.get(c as Measured), urlOf(run, c), { connections: settings.connections, seconds: 2, cert: c === 'direct' ? undefined : run.clientEc });
  }

  if (ran('keepalive')) await keepAliveRounds(run, cases);
  if (ran('logging')) await loggingCase(run);
  if (ran('2workers')) await twoWorkerCase(figures, certs, run.clientEc);
  if (ran('handshakes')) await handshakeRounds(run);
  if (ran('paced')) await pacedRounds(run, ['direct', ...baselines(run)]);
  if (ran('idle')) await idleConnectionsRss(run);
  if (ran('keepalive')) {
    for (const p of running(run)) {
      figures.rss[p]!.loadMb = Math.max(...(figures.keepAlive[p] ?? []).map((r) => r.maxRssMb ?? 0));
    }
  }
  if (ran('rotations')) await rotationCase(run);

  for (const [p, why] of Object.entries(figures.problems)) figures.notes.push(`${p}: n/a (${why})`);
  await stopAll();

  const report = renderReport(figures);
  process.stdout.write(`${report}\n`);
  writeResults(report, startedAt);
}

/**
 * The main meshward and every variant, one worker each. One that does not start is n/a with the reason
 * (its processes stopped); the rest of the run goes on.
 */
async function startMeshwards(run: Run): Promise<void> {
  const instances: { column: Measured; bin: string; start: () => Promise<RunningProxy> }[] = [
    { column: 'meshward', bin: meshwardBin, start: () => startMeshward(meshwardBin, work, run.certs, CLIENT_ID) },
    ...variants.map((v, slot) => ({
      column: variantColumn(v.label), bin: v.bin, start: () => startMeshwardVariant(v, slot, work, run.certs, CLIENT_ID),
    })),
  ];
  for (const inst of instances) {
    log(`starting ${inst.column}`);
    try {
      // A missing build is the likeliest mistake with variants: say so rather than "the sidecar exited".
      if (!fs.existsSync(inst.bin)) throw new Error(`${inst.bin} does not exist`);
      run.proxies.set(inst.column, await inst.start());
    } catch (err) {
      run.figures.problems[inst.column] = `sidecar failed to start: ${(err as Error).message}`;
      for (const t of (err as { processes?: Tracked[] }).processes ?? []) await stop(t, 1000);
      log(`${inst.column}: n/a (${run.figures.problems[inst.column]})`);
    }
  }
}

/** A proxy that started but answers wrongly is not measured either: the check says why. nginx or HAProxy failing stops the run. */
async function probeAll(run: Run): Promise<void> {
  for (const p of running(run)) {
    const rp = run.proxies.get(p)!;
    const probe = await measuredWrk(rp, urlOf(run, p), { connections: 1, seconds: 1, cert: run.clientEc });
    if (probe.wrk.requests > 0 && failures(probe.wrk) === 0) continue;
    const why = `probe request failed: ${describeRun(probe)} (see ${rp.logFile})`;
    if (p === 'nginx' || p === 'haproxy') throw new Error(`${p}: ${why}`);
    run.figures.problems[p] = why;
    log(`${p}: n/a (${why})`);
  }
}

/** Keep-alive HTTP/1.1 throughput, one worker: direct, the baselines and the variants, interleaved. */
async function keepAliveRounds(run: Run, cases: readonly CaseName[]): Promise<void> {
  for (let r = 0; r < settings.rounds; r++) {
    for (const c of rotated(cases, r)) {
      const res = await measuredWrk(run.proxies.get(c as Measured), urlOf(run, c), {
        connections: settings.connections, seconds: settings.seconds, cert: c === 'direct' ? undefined : run.clientEc,
      });
      roundLine(run, `keep-alive round ${r + 1} ${c}: ${describeRun(res)}`);
      (run.figures.keepAlive[c] ??= []).push(res);
    }
  }
}

/**
 * The cost of logging every allowed request (issue 14): meshward with the line off (the main instance),
 * meshward with it on (started for this case), nginx with a buffered access log (started for this
 * case), interleaved keep-alive rounds. The two extra instances are stopped afterwards.
 */
async function loggingCase(run: Run): Promise<void> {
  const started: RunningProxy[] = [];
  const instances = new Map<LoggingInstance, RunningProxy>();
  const main = run.proxies.get('meshward');
  if (main !== undefined && run.figures.problems.meshward === undefined) instances.set('meshward, line off', main);
  try {
    for (const [name, startIt] of [
      ['meshward, line on', () => startMeshwardLogging(meshwardBin, work, run.certs, CLIENT_ID)],
      ['nginx, access log', () => startNginx(work, run.certs, 1, true)],
    ] as const) {
      log(`starting ${name}`);
      try {
        const rp = await startIt();
        started.push(rp);
        proxyProcesses.push(...rp.processes);
        instances.set(name, rp);
      } catch (err) {
        for (const t of (err as { processes?: Tracked[] }).processes ?? []) await stop(t, 1000);
        run.figures.notes.push(`logging case: ${name} n/a (did not start: ${(err as Error).message})`);
      }
    }
    const url = (rp: RunningProxy) => `https://127.0.0.1:${rp.ports['ec-p256']}${REQUEST_PATH}`;
    for (const rp of started) await measuredWrk(rp, url(rp), { connections: settings.connections, seconds: 2, cert: run.clientEc });
    const names = [...instances.keys()];
    for (let r = 0; r < settings.rounds; r++) {
      for (const name of rotated(names, r)) {
        const rp = instances.get(name)!;
        const res = await measuredWrk(rp, url(rp), { connections: settings.connections, seconds: settings.seconds, cert: run.clientEc });
        roundLine(run, `logging round ${r + 1} ${name}: ${describeRun(res)}`);
        (run.figures.logging[name] ??= []).push(res);
      }
    }
  } finally {
    for (const rp of started) {
      for (const t of rp.processes) {
        const i = proxyProcesses.indexOf(t);
        if (i >= 0) proxyProcesses.splice(i, 1);
      }
      await Promise.all(rp.processes.map((t) => stop(t)));
    }
  }
}

/** Full mTLS handshakes (no resumption), EC P-256 and RSA-2048: the baselines and the variants, interleaved. */
async function handshakeRounds(run: Run): Promise<void> {
  for (let r = 0; r < settings.rounds; r++) {
    for (const kt of ['ec-p256', 'rsa-2048'] as const) {
      for (const p of rotated(running(run), r)) {
        const res = await measuredWrk(run.proxies.get(p), urlOf(run, p, kt), {
          connections: settings.handshakeConnections, seconds: settings.seconds, headers: ['Connection: close'],
          cert: { crt: run.certs.client[kt].crt, key: run.certs.client[kt].key }, noResume: true, keyType: kt,
        });
        roundLine(run, `handshakes round ${r + 1} ${kt} ${p}: ${describeRun(res)}`);
        (run.figures.handshakes[kt][p] ??= []).push(res);
      }
    }
  }
}

/** Latency at a fixed rate (the paced client), direct and the baselines. */
async function pacedRounds(run: Run, cases: readonly CaseName[]): Promise<void> {
  for (let r = 0; r < settings.rounds; r++) {
    for (const c of rotated(cases, r)) {
      const thaw = aloneOnCore(proxyProcesses, run.proxies.get(c as Measured)?.main);
      const res = await pacedLatency({
        port: c === 'direct' ? BACKEND_PORT : run.proxies.get(c)!.ports['ec-p256'], path: REQUEST_PATH, rate: settings.pacedRate,
        seconds: settings.pacedSeconds, warmupSeconds: 1, tls: c === 'direct' ? undefined : run.clientEc,
      }).finally(thaw);
      roundLine(run, `paced ${settings.pacedRate} req/s round ${r + 1} ${c}: p50 ${(res.p50Us / 1000).toFixed(3)} ms, ` +
        `p99 ${(res.p99Us / 1000).toFixed(3)} ms, ${res.recorded} recorded, ${res.errors} errors, achieved ${Math.round(res.achievedRate)} req/s`);
      (run.figures.paced[c] ??= []).push(res);
    }
  }
}

/** RSS with idle keep-alive mTLS connections, the baselines. */
async function idleConnectionsRss(run: Run): Promise<void> {
  for (const p of baselines(run)) {
    const rp = run.proxies.get(p)!;
    const thaw = aloneOnCore(proxyProcesses, rp.main);
    // What the megabytes are (file-backed binary and libraries vs anonymous heap), before and with the connections.
    const server = servingProcesses(rp.main.pid)[0] ?? rp.main.pid;
    const before = rssSplitMb(server);
    const conns = await openIdleConnections(rp.ports['ec-p256'], REQUEST_PATH, settings.idleConnections, 50, run.clientEc);
    await sleep(1500);
    const rss = workerRssMb(rp.main.pid);
    const withThem = rssSplitMb(server);
    conns.close();
    thaw();
    run.figures.rss[p] = { ...run.figures.rss[p]!, idleConnectionsMb: rss, idleOpened: conns.opened, idleFailed: conns.failed };
    const split = (x: { fileBacked: number; anonymous: number } | undefined) => (x ? `${x.fileBacked.toFixed(1)} file-backed + ${x.anonymous.toFixed(1)} anonymous` : '?');
    roundLine(run, `idle connections ${p}: ${conns.opened} open (${conns.failed} failed${conns.firstError ? `: ${conns.firstError}` : ''}), RSS ${rss.toFixed(1)} MB ` +
      `(before them: ${split(before)}; with them: ${split(withThem)})`);
    await sleep(1000);
  }
}

/** Certificate rotations under load, the baselines. */
async function rotationCase(run: Run): Promise<void> {
  const { certs, clientEc } = run;
  for (const p of baselines(run)) {
    const proxy = run.proxies.get(p)!;
    const seconds = Math.ceil((2000 + settings.rotations * settings.rotationIntervalMs + 2000) / 1000);
    const keepAlive = measuredWrk(proxy, urlOf(run, p), { connections: 20, seconds, cert: clientEc });
    const closing = runWrk({
      url: urlOf(run, p), connections: 2, seconds, core: CLIENT_CORE, script: luaScript, headers: ['Connection: close'],
      clientCert: { ...clientEc, preload }, noResume: true,
    });
    await sleep(2000);
    let rotated = 0;
    let rotationError: string | undefined;
    for (let i = 0; i < settings.rotations; i++) {
      try {
        writeIdentity(p, proxy.identityDirs['ec-p256'], certs.rotations[i % certs.rotations.length]!);
        proxy.reload();
        rotated++;
      } catch (err) {
        rotationError ??= (err as Error).message;
      }
      await sleep(settings.rotationIntervalMs);
    }
    const [ka, cl] = await Promise.all([keepAlive, closing]);
    // New handshakes must present the last certificate within 5 s (a reloading HAProxy or nginx may
    // still have its old worker accepting for a moment).
    const expected = leafFingerprint(certs.rotations[(settings.rotations - 1) % certs.rotations.length]!.crt);
    let served = '';
    for (let attempt = 0; attempt < 20 && served !== expected; attempt++) {
      if (attempt > 0) await sleep(250);
      served = await servedFingerprint(proxy.ports['ec-p256'], clientEc);
    }
    const failed = failures(ka.wrk) + failures(cl);
    run.figures.rotation[p] = {
      rotations: rotated, failed, requests: ka.wrk.requests + cl.requests, servesLast: served === expected,
      error: rotationError,
    };
    roundLine(run, `rotations ${p}: ${rotated} rotations, ${failed} failed of ${ka.wrk.requests + cl.requests} requests ` +
      `(keep-alive: ${describeRun(ka, false)}; new connection per request: ${Math.round(requestsPerSecond(cl))} req/s, ${failures(cl)} errors), ` +
      `serves the last certificate afterwards: ${served === expected ? 'yes' : `no (${served.slice(0, 30)})`}` +
      (rotationError ? `; rotation error: ${rotationError}` : ''));
  }
}

/**
 * Writes the report to BENCH_RESULTS_DIR (default bench/results) as <name>-<UTC stamp>.md, name being
 * BENCH_RESULTS_NAME (default proxy). Only the default name also writes proxy-latest.md, which
 * bench/run.sh reads: an effects run (bench/effects.sh) must not replace the latest full results.
 */
function writeResults(report: string, startedAt: Date): void {
  const results = path.resolve(process.env.BENCH_RESULTS_DIR ?? path.join(root, 'bench', 'results'));
  const name = resultsName(process.env.BENCH_RESULTS_NAME);
  fs.mkdirSync(results, { recursive: true });
  const p2 = (n: number) => String(n).padStart(2, '0');
  const d = startedAt;
  const stamp = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}-${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}`;
  const written = [`${name}-${stamp}.md`];
  if (name === 'proxy') written.unshift('proxy-latest.md');
  for (const file of written) fs.writeFileSync(path.join(results, file), `${report}\n`);
  const shown = results.startsWith(`${root}${path.sep}`) ? path.relative(root, results) : results;
  log(`written: ${written.map((f) => `${shown}/${f}`).join(' and ')}`);
}

function resultsName(v: string | undefined): string {
  if (v === undefined || v === '') return 'proxy';
  if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new Error(`BENCH_RESULTS_NAME must be letters, digits, - or _, got ${v}`);
  return v;
}

/**
 * The keep-alive case with 2 workers: nginx `worker_processes 2`, HAProxy `nbthread 2` and meshward
 * `workers: 2`, each a separate instance on its own port, started before the case's rounds, frozen like
 * the other proxies while another one is measured, and stopped after it. Not pinned: the proxy, wrk
 * (a thread per core) and the backend share both cores. An instance that does not start or answer is
 * reported n/a with the reason; the rest of the run goes on.
 */
async function twoWorkerCase(figures: Figures, certs: BenchCertificates, clientEc: { crt: string; key: string }): Promise<void> {
  const tw = figures.twoWorkers;
  const instances = new Map<ProxyName, RunningProxy>();
  for (const p of PROXIES) {
    log(`starting ${p} with 2 workers`);
    try {
      const rp = p === 'nginx' ? await startNginx(work, certs, 2)
        : p === 'haproxy' ? await startHaproxy(work, certs, 2)
          : await startMeshward(meshwardBin, work, certs, CLIENT_ID, 2);
      instances.set(p, rp);
      proxyProcesses.push(...rp.processes);
    } catch (err) {
      tw.problems[p] = `did not start: ${(err as Error).message}`;
      for (const t of (err as { processes?: Tracked[] }).processes ?? []) await stop(t, 1000);
      log(`${p} with 2 workers: n/a (${tw.problems[p]})`);
    }
  }
  const url = (p: ProxyName) => `https://127.0.0.1:${proxyPort(p, 'ec-p256', 2)}${REQUEST_PATH}`;
  const load = (seconds: number, connections = settings.connections): LoadOptions =>
    ({ connections, seconds, cert: clientEc, clientCores: ALL_CORES, threads: settings.twoWorkerWrkThreads });
  try {
    for (const [p, rp] of instances) {
      const probe = await measuredWrk(rp, url(p), { ...load(1, 2) });
      if (probe.wrk.requests === 0 || failures(probe.wrk) > 0) {
        tw.problems[p] = `probe request failed: ${describeRun(probe, true, true)} (see ${rp.logFile})`;
        log(`${p} with 2 workers: n/a (${tw.problems[p]})`);
      }
    }
    const live = PROXIES.filter((p) => instances.has(p) && tw.problems[p] === undefined);
    await sleep(1000);
    for (const p of live) tw.rss[p] = { idleMb: workerRssMb(instances.get(p)!.main.pid) };
    log(`warm-up with 2 workers (2 s each): ${live.join(', ')}`);
    for (const p of live) await measuredWrk(instances.get(p), url(p), load(2));
    for (let r = 0; r < settings.rounds; r++) {
      for (const p of rotated(live, r)) {
        const run = await measuredWrk(instances.get(p), url(p), load(settings.seconds));
        const line = `keep-alive 2 workers round ${r + 1} ${p}: ${describeRun(run, true, true)}`;
        log(line);
        figures.rounds.push(line);
        (tw.keepAlive[p] ??= []).push(run);
      }
    }
    for (const p of live) tw.rss[p]!.loadMb = Math.max(...(tw.keepAlive[p] ?? []).map((run) => run.maxRssMb ?? 0));
  } finally {
    // Only this case uses them: stop them so they take no memory or wake-ups from the rest of the run.
    for (const rp of instances.values()) {
      for (const t of rp.processes) {
        const i = proxyProcesses.indexOf(t);
        if (i >= 0) proxyProcesses.splice(i, 1);
      }
      await Promise.all(rp.processes.map((t) => stop(t)));
    }
  }
  for (const [p, why] of Object.entries(tw.problems)) figures.notes.push(`${p} with 2 workers: n/a (${why})`);
}

// Whatever happens, every process this run started is stopped.
let stopping = false;
async function shutdown(code: number, why?: unknown): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (why !== undefined) log(`stopping: ${why instanceof Error ? why.message : String(why)}`);
  await stopAll();
  process.exit(code);
}
process.on('exit', killAllNow);
process.on('SIGINT', () => void shutdown(130, 'interrupted'));
process.on('SIGTERM', () => void shutdown(143, 'terminated'));
process.on('uncaughtException', (err) => void shutdown(1, err));
setTimeout(() => void shutdown(1, `the run took longer than ${settings.deadlineMinutes} minutes`), settings.deadlineMinutes * 60_000).unref();

main().then(() => shutdown(0), (err) => shutdown(1, err));
