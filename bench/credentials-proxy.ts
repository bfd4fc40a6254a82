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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { signRequest } from '../src/auth/http-signature.js';
import { makeTestPki, writeIdentityDir } from '../test/support/pki-fixtures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
const ISSUER = 'https://auth.bench.test';
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
}

interface Prepared {
  headers: Record<string, string>;
  body: Buffer;
}

function run(args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'meshward.js'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshward ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'meshward-bench-creds-'));
  let sidecar: ChildProcess | undefined;
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  try {
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const pki = makeTestPki();
    writeIdentityDir(join(tmp, 'identity'), pki.leaf({ spiffeId: 'spiffe://example.org/ns/shop/sa/orders', dns: ['localhost'], ips: ['127.0.0.1'] }), pki);
    const client = pki.leaf({ spiffeId: FRONTEND });
    const keyFile = join(tmp, 'apikeys.yaml');
    const plain = JSON.parse(run(['apikey', 'create', '--file', keyFile, '--name', 'bench', '--scopes', 'orders:read,orders:write', '--json'])) as { key: string };
    const hmac = JSON.parse(run(['apikey', 'create', '--file', keyFile, '--name', 'bench-hmac', '--scopes', 'orders:read,orders:write', '--hmac', '--json'])) as { id: string; secret: string };
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(tmp, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'b1', alg: 'ES256', use: 'sig' }] }));
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: ISSUER, aud: 'bench', sub: 'svc', scope: 'orders:read orders:write', iat: now, exp: now + 3600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'b1' }).sign(privateKey);
    writeFileSync(join(tmp, 'policy.yaml'), stringify({
      grants: [{ identities: [FRONTEND], scopes: ['orders:read', 'orders:write'] }],
      routes: [
        { match: { path: '/mtls' }, scope: 'orders:read' },
        { match: { path: '/apikey' }, scope: 'orders:read', require: ['mtls', 'apikey'] },
        { match: { path: '/jwt' }, scope: 'orders:read', require: ['mtls', 'jwt'] },
        { match: { path: '/hmac' }, scope: 'orders:write', require: ['mtls', 'hmac'] },
      ],
    }));
    writeFileSync(join(tmp, 'sidecar.yaml'), stringify({
      identity: { dir: './identity' },
      inbound: { listen: '127.0.0.1:0', app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` },
      policy: './policy.yaml',
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'info', allowed: 'silent' },
      credentials: { apiKeys: './apikeys.yaml', jwt: [{ issuer: ISSUER, audiences: ['bench'], jwks: './jwks.json', algorithms: ['ES256'] }] },
    }));
    const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
    // BENCH_SIDECAR_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the sidecar (NODE_OPTIONS refuses --cpu-prof).
    const flags = (process.env.BENCH_SIDECAR_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const argv = [...flags, join(ROOT, 'bin', 'meshward.js'), 'sidecar', '--config', join(tmp, 'sidecar.yaml')];
    sidecar = pin ? spawn('taskset', ['-c', '0', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await inboundPort(sidecar);

    const body = randomBytes(1024);
    const authority = `127.0.0.1:${port}`;
    let nonce = 0;
    const digest = `sha-256=:${createSha(body)}:`;
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
      { name: 'mTLS + API key', path: '/apikey', method: 'GET', baseline: GET, target: 0.95, next: () => ({ headers: { 'x-api-key': plain.key } }) },
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
    ];
    const tls: ConnectionOptions = { host: '127.0.0.1', port, ca: pki.bundlePem, cert: client.chainPem, key: client.keyPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] };
    const connections = Array.from({ length: CONNECTIONS }, () => new RawConnection(tls));
    const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const failures = new Map<string, number>(cases.map((c) => [c.name, 0]));
    // BENCH_CASES=jwt (words matched in the case names, comma-separated) runs only those cases, e.g. to profile one.
    const only = (process.env.BENCH_CASES ?? '').toLowerCase().split(',').filter((w) => w !== '');
    if (only.length > 0) cases.splice(0, cases.length, ...cases.filter((c) => only.some((w) => c.name.toLowerCase().includes(w))));
    // Enough prepared requests for 10k req/s (this machine does about 3k); the pool is made before the clock starts.
    const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const run1 = async (c: Case, seconds: number): Promise<number> => {
      c.prepare?.(Math.ceil(seconds * 10_000));
      const before = cpuSeconds(sidecar!.pid!);
      const { rps, requests } = await load(connections, authority, c, seconds, failures);
      const used = cpuSeconds(sidecar!.pid!) - before;
      if (requests > 0 && !Number.isNaN(used)) cpu.get(c.name)!.push((used / requests) * 1e6);
      if (c.prepare !== undefined) pool = [];
      return rps;
    };
    for (const c of cases) await run1(c, 1); // warm-up: connections, JIT, the JWT cache
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) results.get(c.name)!.push(await run1(c, SECONDS));
    }
    for (const conn of connections) conn.close();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const lines = [
      `## Credential checks through the sidecar (keep-alive, ${CONNECTIONS} connections, median of ${ROUNDS} × ${SECONDS} s, sidecar ${pin ? 'pinned to core 0' : 'not pinned'})`,
      '',
      '| case | requests/s | ratio to mTLS only | target | sidecar CPU µs/request | CPU ratio (baseline/case) | failures |',
      '|---|---:|---:|---:|---:|---:|---:|',
    ];
    for (const c of cases) {
      const rps = median(results.get(c.name)!);
      const base = median(results.get(c.baseline ?? c.name) ?? [Number.NaN]);
      const us = median(cpu.get(c.name)!.length > 0 ? cpu.get(c.name)! : [Number.NaN]);
      const baseUs = median(cpu.get(c.baseline ?? c.name) ?? [Number.NaN]);
      lines.push(`| ${c.name} | ${Math.round(rps)} | ${(rps / base).toFixed(3)}${c.baseline === undefined ? '' : ` (to ${c.baseline})`} | ${c.target === undefined ? '' : `≥ ${c.target}`} | ${us.toFixed(0)} | ${(baseUs / us).toFixed(3)} | ${failures.get(c.name)} |`);
    }
    lines.push(
      '',
      'Notes: API key and JWT are GETs, compared with the mTLS-only GET. The HMAC case is a POST of a 1 KiB body, compared with an',
      'mTLS-only POST of the same body. Each HMAC request has its own signature (nonce, `created`), all made before the timed run',
      '(valid for credentials.hmac.maxSkew), so the client\'s signing and digesting are outside the measurement; the sidecar still',
      'digests the body, verifies the signature and records it in the replay cache on every request.',
      'Sidecar CPU µs/request: the sidecar process\'s user+system time (/proc/PID/stat) over a run divided by its requests; on a',
      'shared machine it moves less than requests/s, and its ratio is what the throughput ratio would be were the sidecar the bottleneck.',
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    sidecar?.kill('SIGTERM');
    app.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function createSha(b: Buffer): string {
  return createHash('sha256').update(b).digest('base64');
}

/** User + system CPU seconds of a process so far (NaN where /proc is missing). */
function cpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
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
async function load(connections: RawConnection[], authority: string, c: Case, seconds: number, failures: Map<string, number>): Promise<{ rps: number; requests: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async (conn: RawConnection): Promise<void> => {
    while (performance.now() < end) {
      const { headers, body } = c.next();
      let head = `${c.method} ${c.path} HTTP/1.1\r\nhost: ${authority}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      const status = await conn.exchange(`${head}\r\n`, body);
      if (status === 200) done++;
      else failures.set(c.name, failures.get(c.name)! + 1);
    }
  };
  const start = performance.now();
  await Promise.all(connections.map(worker));
  return { rps: done / ((performance.now() - start) / 1000), requests: done };
}

await main();
