// Credential cases through a real sidecar (`make bench`, part "credentials"): keep-alive requests over mTLS
// with nothing else, with an API key, with a JWT (the same token repeated, as real clients do) and with an
// HMAC signature over a 1 KiB body (signed afresh per request: a repeated signature is a replay), each as a
// ratio to mTLS-only measured in the same run, rounds interleaved so drift hits every case alike. One
// sidecar process (workers: 1) pinned to core 0 when taskset exists; the load generator (node https, one
// keep-alive connection per concurrent request) runs here. Targets (issue 13): API key ≥ 0.95×, JWT ≥
// 0.90×, HMAC ≥ 0.80×. The client's own work (signing HMAC requests) is in the measured loop, so the
// HMAC ratio is a lower bound. Prints a Markdown table.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { signRequest } from '../src/auth/http-signature.js';
import { makeTestPki, writeIdentityDir } from '../test/helpers/pki-fixtures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
const ISSUER = 'https://auth.bench.test';

interface Case {
  name: string;
  path: string;
  method: string;
  /** Headers (and body) for one request. */
  next(): { headers: Record<string, string>; body?: Buffer };
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
    const argv = [join(ROOT, 'bin', 'meshward.js'), 'sidecar', '--config', join(tmp, 'sidecar.yaml')];
    sidecar = pin ? spawn('taskset', ['-c', '0', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await inboundPort(sidecar);

    const body = randomBytes(1024);
    const authority = `127.0.0.1:${port}`;
    let nonce = 0;
    const cases: Case[] = [
      { name: 'mTLS only', path: '/mtls', method: 'GET', next: () => ({ headers: {} }) },
      { name: 'mTLS + API key', path: '/apikey', method: 'GET', next: () => ({ headers: { 'x-api-key': plain.key } }) },
      { name: 'mTLS + JWT (repeated token)', path: '/jwt', method: 'GET', next: () => ({ headers: { authorization: `Bearer ${token}` } }) },
      {
        name: 'mTLS + HMAC, 1 KiB body',
        path: '/hmac',
        method: 'POST',
        next: () => {
          const digest = `sha-256=:${createSha(body)}:`;
          const sig = signRequest(
            { method: 'POST', scheme: 'https', authority, path: '/hmac', headers: { 'content-digest': digest }, body: { sha256: Buffer.alloc(32) } },
            { keyId: hmac.id, secret: Buffer.from(hmac.secret, 'base64'), created: Math.floor(Date.now() / 1000), nonce: `n${nonce++}` },
          );
          return { headers: { 'content-digest': digest, ...sig, 'content-length': String(body.length) }, body };
        },
      },
    ];
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, ca: pki.bundlePem, cert: client.chainPem, key: client.keyPem, servername: 'localhost' });
    const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const failures = new Map<string, number>(cases.map((c) => [c.name, 0]));
    for (const c of cases) await load(agent, port, c, 1, failures); // warm-up: connections, JIT, the JWT cache
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) results.get(c.name)!.push(await load(agent, port, c, SECONDS, failures));
    }
    agent.destroy();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const base = median(results.get('mTLS only')!);
    const targets: Record<string, number> = { 'mTLS + API key': 0.95, 'mTLS + JWT (repeated token)': 0.9, 'mTLS + HMAC, 1 KiB body': 0.8 };
    const lines = [
      `## Credential checks through the sidecar (keep-alive, ${CONNECTIONS} connections, median of ${ROUNDS} × ${SECONDS} s, sidecar ${pin ? 'pinned to core 0' : 'not pinned'})`,
      '',
      '| case | requests/s | ratio to mTLS only | target | failures |',
      '|---|---:|---:|---:|---:|',
    ];
    for (const c of cases) {
      const rps = median(results.get(c.name)!);
      const target = targets[c.name];
      lines.push(`| ${c.name} | ${Math.round(rps)} | ${(rps / base).toFixed(3)} | ${target === undefined ? '' : `≥ ${target}`} | ${failures.get(c.name)} |`);
    }
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

/** Requests per second of `c` for `seconds` with CONNECTIONS concurrent keep-alive requests; non-200s count as failures. */
async function load(agent: Agent, port: number, c: Case, seconds: number, failures: Map<string, number>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const { headers, body } = c.next();
      const status = await new Promise<number>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: c.path, method: c.method, agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
        req.end(body);
      });
      if (status === 200) done++;
      else failures.set(c.name, failures.get(c.name)! + 1);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return done / ((performance.now() - start) / 1000);
}

await main();
