// Credential cases through a real sidecar (`make bench`, part "credentials"): keep-alive requests over mTLS
// with nothing else, with an API key, with a JWT (the same token repeated, as real clients do) and with an
// HMAC signature over a 1 KiB body, each as a ratio to mTLS-only measured in the same run, rounds interleaved
// so drift hits every case alike. The HMAC case is a POST, so it is compared with an mTLS-only POST of the
// same 1 KiB body (a GET baseline would charge the body to the signature). Every HMAC request carries a
// signature of its own (a repeated one is a replay), but the signatures are made before each timed run:
// one with `created` stays valid for credentials.hmac.maxSkew, and signing is the client's work, not the
// sidecar's. One sidecar process (workers: 1) pinned to core 0 when taskset exists; the load generator
// (a minimal HTTP/1.1 client on tls sockets, one keep-alive connection per concurrent request) runs here. Targets (issue 13): API key
// ≥ 0.95×, JWT ≥ 0.90× (both against the GET), HMAC ≥ 0.80× (against the POST). Prints a Markdown table.
// The warm-up of each case (BENCH_WARMUP_REQUESTS, default 5000: connections, JIT, the JWT cache) is not counted in any figure.
// BENCH_BASELINE_ROOT=DIR (another built checkout, e.g. of main) starts a second sidecar from DIR's build with
// the same files and runs every case against both, interleaved round by round, then prints each case's CPU µs
// per request before → after: on a loaded machine only such same-run comparisons of CPU time mean anything.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { FRONTEND, JWT_ISSUER, writeCredentialFiles } from './credential-files.js';
import { signRequest } from '../src/auth/http-signature.js';
import { makeTestPki, writeIdentityDir } from '../test/support/pki-fixtures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
/** Requests each case runs (per sidecar) before anything is counted. */
const WARMUP = Number(process.env.BENCH_WARMUP_REQUESTS ?? 5000);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** USER_HZ: /proc/PID/stat counts CPU time in these. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

interface Case {
  name: string;
  path: string;
  method: string;
  /** The mTLS-only case this one is a ratio to, and its target (none for the baselines). */
  baseline?: string;
  target?: number;
  /** Called before each timed run with a generous request count: makes what next() hands out. */
  prepare?(count: number): void;
  /** Headers (and body) for one request. */
  next(): { headers: Record<string, string>; body?: Buffer };
  /** A diagnostic case: run only when BENCH_CASES names it. */
  optIn?: boolean;
}

interface Prepared {
  headers: Record<string, string>;
  body: Buffer;
}

const BASELINE_ROOT = process.env.BENCH_BASELINE_ROOT;

/** A sidecar under test: this build, or the baseline build of BENCH_BASELINE_ROOT. */
interface Target {
  label: string;
  child: ChildProcess;
  authority: string;
  connections: RawConnection[];
}

function run(args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'meshward.js'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshward ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'meshward-bench-creds-'));
  const targets: Target[] = [];
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  try {
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const pki = makeTestPki();
    writeIdentityDir(join(tmp, 'identity'), pki.leaf({ spiffeId: 'spiffe://example.org/ns/shop/sa/orders', dns: ['localhost'], ips: ['127.0.0.1'] }), pki);
    const client = pki.leaf({ spiffeId: FRONTEND });
    const { plainKey, hmac, token } = await writeCredentialFiles(tmp, run);
    writeFileSync(join(tmp, 'sidecar.yaml'), stringify({
      identity: { dir: './identity' },
      inbound: { listen: '127.0.0.1:0', app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` },
      policy: './policy.yaml',
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'info', allowed: 'silent' },
      credentials: { apiKeys: './apikeys.yaml', jwt: [JWT_ISSUER] },
    }));
    const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
    // BENCH_SIDECAR_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the sidecar (NODE_OPTIONS refuses --cpu-prof).
    const flags = (process.env.BENCH_SIDECAR_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const wrapper = (process.env.BENCH_SIDECAR_WRAPPER ?? '').split(' ').filter((f) => f !== '');
    const start = async (root: string): Promise<{ child: ChildProcess; port: number }> => {
      const argv = [...flags, join(root, 'bin', 'meshward.js'), 'sidecar', '--config', join(tmp, 'sidecar.yaml')];
      // Both sidecars on core 0: only one of them is loaded at a time.
      // BENCH_SIDECAR_WRAPPER, e.g. "strace -f -c -o /tmp/syscalls", runs the sidecar under another command (CPU figures then include it).
      const command = [...(pin ? ['taskset', '-c', '0'] : []), ...wrapper, process.execPath, ...argv];
      const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      return { child, port: await inboundPort(child) };
    };
    const roots: [string, string][] = BASELINE_ROOT === undefined ? [['this build', ROOT]] : [['baseline', BASELINE_ROOT], ['this build', ROOT]];
    const started: { label: string; child: ChildProcess; port: number }[] = [];
    for (const [label, root] of roots) {
      const s = await start(root);
      started.push({ label, ...s });
      targets.push({ label, child: s.child, authority: `127.0.0.1:${s.port}`, connections: [] });
    }

    const body = randomBytes(1024);
    let nonce = 0;
    const digest = `sha-256=:${createSha(body)}:`;
    let authority = targets[0]!.authority;
    const signed = (): Prepared => {
      const sig = signRequest(
        { method: 'POST', scheme: 'https', authority, path: '/hmac', headers: { 'content-digest': digest }, body: { sha256: Buffer.alloc(32) } },
        { keyId: hmac.id, secret: Buffer.from(hmac.secret, 'base64'), created: Math.floor(Date.now() / 1000), nonce: `n${nonce++}` },
      );
      return { headers: { 'content-digest': digest, ...sig, 'content-length': String(body.length) }, body };
    };
    let pool: Prepared[] = [];
    const GET = 'mTLS only (GET)';
    const POST = 'mTLS only (POST, 1 KiB body)';
    const cases: Case[] = [
      { name: GET, path: '/mtls', method: 'GET', next: () => ({ headers: {} }) },
      { name: POST, path: '/mtls', method: 'POST', next: () => ({ headers: { 'content-length': String(body.length) }, body }) },
      { name: 'mTLS + API key', path: '/apikey', method: 'GET', baseline: GET, target: 0.95, next: () => ({ headers: { 'x-api-key': plainKey } }) },
      { name: 'mTLS + JWT (repeated token)', path: '/jwt', method: 'GET', baseline: GET, target: 0.9, next: () => ({ headers: { authorization: `Bearer ${token}` } }) },
      {
        name: 'mTLS + HMAC, 1 KiB body',
        path: '/hmac',
        method: 'POST',
        baseline: POST,
        target: 0.8,
        prepare: (count) => {
          pool = Array.from({ length: count }, signed);
        },
        // Past the pool (a much faster machine), sign here: slower, never a replay.
        next: () => pool.pop() ?? signed(),
      },
      {
        // Diagnostic (BENCH_CASES=signature): the HMAC case's exact requests on the mTLS-only route, which
        // checks nothing and forwards the signature headers. Its distance to the plain POST is what the
        // bigger request head costs (parse, forward); its distance to the HMAC case is the credential step.
        name: 'signature headers, mTLS-only route (diagnostic)',
        path: '/mtls',
        method: 'POST',
        baseline: POST,
        optIn: true,
        prepare: (count) => {
          pool = Array.from({ length: count }, signed);
        },
        next: () => pool.pop() ?? signed(),
      },
    ];
    for (const t of started) {
      const tls: ConnectionOptions = { host: '127.0.0.1', port: t.port, ca: pki.bundlePem, cert: client.chainPem, key: client.keyPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] };
      targets.find((x) => x.child === t.child)!.connections = Array.from({ length: CONNECTIONS }, () => new RawConnection(tls));
    }
    // BENCH_CASES=jwt (words matched in the case names, comma-separated) runs only those cases, e.g. to profile one.
    const only = (process.env.BENCH_CASES ?? '').toLowerCase().split(',').filter((w) => w !== '');
    const picked = only.length > 0 ? cases.filter((c) => only.some((w) => c.name.toLowerCase().includes(w))) : cases.filter((c) => c.optIn !== true);
    cases.splice(0, cases.length, ...picked);
    const key = (t: Target, c: Case): string => `${t.label}\n${c.name}`;
    const results = new Map<string, number[]>();
    const failures = new Map<string, number>();
    /** Sidecar CPU µs per request (user + system) and the system part alone, per timed run. */
    const cpu = new Map<string, number[]>();
    const sys = new Map<string, number[]>();
    /** read- and write-type system calls per request (/proc/PID/io syscr, syscw): extra socket writes show here. */
    const reads = new Map<string, number[]>();
    const writes = new Map<string, number[]>();
    for (const t of targets) {
      for (const c of cases) for (const m of [results, cpu, sys, reads, writes]) m.set(key(t, c), []);
      for (const c of cases) failures.set(key(t, c), 0);
    }
    // Enough prepared requests for 10k req/s (this machine does about 3k); the pool is made before the clock starts.
    const run1 = async (t: Target, c: Case, seconds: number, counted: boolean): Promise<number> => {
      authority = t.authority;
      c.prepare?.(Math.ceil(seconds * 10_000));
      const before = cpuTimes(t.child.pid!);
      const ioBefore = syscalls(t.child.pid!);
      const { rps, requests } = await load(t.connections, t.authority, c, seconds, failures, key(t, c));
      const after = cpuTimes(t.child.pid!);
      const ioAfter = syscalls(t.child.pid!);
      // BENCH_VERBOSE=1: every run on stderr, e.g. to turn a --cpu-prof of the sidecar into µs per request.
      if (process.env.BENCH_VERBOSE === '1') process.stderr.write(`${t.label}\t${c.name}\t${counted ? 'timed' : 'warm-up'}\t${seconds}s\t${requests} requests\n`);
      if (c.prepare !== undefined) pool = [];
      // The warm-up runs (connections, JIT, the JWT cache) are not counted: their CPU per request is the start-up's.
      if (!counted) return requests;
      results.get(key(t, c))!.push(rps);
      if (requests > 0 && !Number.isNaN(after.user)) {
        cpu.get(key(t, c))!.push(((after.user + after.sys - before.user - before.sys) / requests) * 1e6);
        sys.get(key(t, c))!.push(((after.sys - before.sys) / requests) * 1e6);
        reads.get(key(t, c))!.push((ioAfter.reads - ioBefore.reads) / requests);
        writes.get(key(t, c))!.push((ioAfter.writes - ioBefore.writes) / requests);
      }
      return requests;
    };
    // Warm-up by count, not time: on a loaded machine a 1 s warm-up ran a few dozen requests, and the first
    // timed run then still paid for the JIT. Each case runs until WARMUP requests (at most 30 s).
    for (const t of targets) {
      for (const c of cases) {
        const until = performance.now() + 30_000;
        let warmed = 0;
        while (warmed < WARMUP && performance.now() < until) warmed += await run1(t, c, 1, false);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved: each case on each sidecar in turn, so drift on a shared machine hits all alike.
      for (const c of cases) for (const t of round % 2 === 0 ? targets : [...targets].reverse()) await run1(t, c, SECONDS, true);
    }
    for (const t of targets) for (const conn of t.connections) conn.close();
    const median = (xs: number[]) => (xs.length === 0 ? Number.NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
    const lines: string[] = [];
    for (const t of targets) {
      const of = (m: Map<string, number[]>, c: Case | undefined) => median(c === undefined ? [] : m.get(key(t, c)) ?? []);
      const byName = (name: string | undefined) => cases.find((c) => c.name === name);
      lines.push(
        `## Credential checks through the sidecar${targets.length > 1 ? ` (${t.label})` : ''} (keep-alive, ${CONNECTIONS} connections, median of ${ROUNDS} × ${SECONDS} s, sidecar ${pin ? 'pinned to core 0' : 'not pinned'})`,
        '',
        '| case | requests/s | ratio to mTLS only | target | sidecar CPU µs/request | of which system | CPU ratio (baseline/case) | read/write syscalls per request | failures |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      );
      for (const c of cases) {
        const base = byName(c.baseline ?? c.name);
        const rps = of(results, c);
        const us = of(cpu, c);
        lines.push(`| ${c.name} | ${Math.round(rps)} | ${(rps / of(results, base)).toFixed(3)}${c.baseline === undefined ? '' : ` (to ${c.baseline})`} | ${c.target === undefined ? '' : `≥ ${c.target}`} | ${us.toFixed(1)} | ${of(sys, c).toFixed(1)} | ${(of(cpu, base) / us).toFixed(3)} | ${of(reads, c).toFixed(2)} / ${of(writes, c).toFixed(2)} | ${failures.get(key(t, c))} |`);
      }
      lines.push('');
    }
    if (targets.length > 1) {
      const [before, after] = targets as [Target, Target];
      lines.push(
        `## Before → after: sidecar CPU µs per request, same run, interleaved (baseline: ${BASELINE_ROOT})`,
        '',
        '| case | before | after | after/before | CPU ratio to mTLS only, before | after |',
        '|---|---:|---:|---:|---:|---:|',
      );
      for (const c of cases) {
        const base = cases.find((x) => x.name === (c.baseline ?? c.name))!;
        const b = median(cpu.get(key(before, c))!);
        const a = median(cpu.get(key(after, c))!);
        const rb = median(cpu.get(key(before, base))!) / b;
        const ra = median(cpu.get(key(after, base))!) / a;
        lines.push(`| ${c.name} | ${b.toFixed(1)} | ${a.toFixed(1)} | ${(a / b).toFixed(3)} | ${rb.toFixed(3)} | ${ra.toFixed(3)} |`);
      }
    }
    lines.push(
      '',
      'Notes: API key and JWT are GETs, compared with the mTLS-only GET. The HMAC case is a POST of a 1 KiB body, compared with an',
      'mTLS-only POST of the same body. Each HMAC request has its own signature (nonce, `created`), all made before the timed run',
      '(valid for credentials.hmac.maxSkew), so the client\'s signing and digesting are outside the measurement; the sidecar still',
      'digests the body, verifies the signature and records it in the replay cache on every request.',
      'Sidecar CPU µs/request: the sidecar process\'s user+system time (/proc/PID/stat) over a run divided by its requests; on a',
      'shared machine it moves less than requests/s, and its ratio is what the throughput ratio would be were the sidecar the bottleneck.',
      '"read/write syscalls per request": /proc/PID/io syscr and syscw over the run, per request (socket reads and writes, epoll excluded).',
      `"of which system": the kernel\'s part of it (socket reads and writes, including loopback delivery to the app). The warm-up (${WARMUP} requests per case) is not counted.`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const t of targets) t.child.kill('SIGTERM');
    app.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function createSha(b: Buffer): string {
  return createHash('sha256').update(b).digest('base64');
}

/** User and system CPU seconds of a process so far (NaN where /proc is missing). */
function cpuTimes(pid: number): { user: number; sys: number } {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, sys: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return { user: Number.NaN, sys: Number.NaN };
  }
}

/** Read- and write-type system calls of a process so far (/proc/PID/io; NaN where it is missing). */
function syscalls(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { reads: Number(/^syscr: (\d+)/m.exec(io)![1]), writes: Number(/^syscw: (\d+)/m.exec(io)![1]) };
  } catch {
    return { reads: Number.NaN, writes: Number.NaN };
  }
}

/** Waits for the sidecar's inbound_listening log line and returns the port. */
function inboundPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('the sidecar did not start within 30 s')), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      const m = /"event":"inbound_listening"[^\n]*"address":"[^"]*:(\d+)"/.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`the sidecar exited (${code})`)));
  });
}

/**
 * One keep-alive mTLS connection speaking just enough HTTP/1.1 for this bench: it writes a request and reads
 * one response (status line, Content-Length or chunked body). node's https client costs more per request than
 * the sidecar does, so with it the bench measured the client (the sidecar sat 70% idle in a --cpu-prof).
 */
class RawConnection {
  private socket: TLSSocket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: ((status: number) => void) | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  /** The status of the response to `head` + `body` (0 when the connection broke; the next call reconnects). */
  async exchange(head: string, body: Buffer | undefined): Promise<number> {
    const socket = this.socket ?? (await this.connect());
    return new Promise<number>((resolve) => {
      this.waiting = resolve;
      if (body === undefined) socket.write(head);
      else socket.write(Buffer.concat([Buffer.from(head), body]));
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private connect(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect(this.options, () => {
        this.socket = socket;
        resolve(socket);
      });
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => {
        this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
        this.parse();
      });
      const broken = (): void => {
        if (this.socket === socket) this.socket = undefined;
        this.buffered = Buffer.alloc(0);
        const w = this.waiting;
        this.waiting = undefined;
        w?.(0);
      };
      socket.on('error', (err) => {
        if (this.socket !== socket) reject(err);
        broken();
      });
      socket.on('close', broken);
    });
  }

  private parse(): void {
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffered.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let total: number;
    if (length !== null) total = end + 4 + Number(length[1]);
    else {
      const last = this.buffered.indexOf('\r\n0\r\n\r\n', end);
      if (last < 0) return;
      total = last + 7;
    }
    if (this.buffered.length < total) return;
    this.buffered = this.buffered.subarray(total);
    const w = this.waiting;
    this.waiting = undefined;
    w?.(status);
  }
}

/** Requests per second of `c` for `seconds` over every connection (one request at a time each); non-200s count as failures. */
async function load(connections: RawConnection[], authority: string, c: Case, seconds: number, failures: Map<string, number>, failureKey: string): Promise<{ rps: number; requests: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async (conn: RawConnection): Promise<void> => {
    while (performance.now() < end) {
      const { headers, body } = c.next();
      let head = `${c.method} ${c.path} HTTP/1.1\r\nhost: ${authority}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      const status = await conn.exchange(`${head}\r\n`, body);
      if (status === 200) done++;
      else failures.set(failureKey, failures.get(failureKey)! + 1);
    }
  };
  const start = performance.now();
  await Promise.all(connections.map(worker));
  return { rps: done / ((performance.now() - start) / 1000), requests: done };
}

await main();
