// The JavaScript cost of the credential step per request, in one process, without sockets: what an
// HTTP/1.1 request on a route with `require` runs beyond an mTLS-only route (the raw credential headers,
// the AuthRequest, gate.authenticate with the API key / JWT / HMAC check and policy.authorize, the
// credential headers stripped, the identity headers with x-mesh-principal), next to what both run
// (gate.decide, the header scan, the identity headers). CPU µs per request (process.cpuUsage) of blocks of
// requests, median of rounds. Socket writes, TLS and the event loop are left out on purpose: on a shared
// machine they move by more than the whole credential step (bench/credentials-proxy.ts measures them).
// BENCH_BASELINE_ROOT=DIR (another built checkout, e.g. of main) loads DIR's build too and runs both
// builds interleaved, block by block, in this one process: before → after on the same CPU at the same time.
// Usage: node dist/bench/credential-step.js
import { createHash, hash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { stringify } from 'yaml';
import { FRONTEND, JWT_ISSUER, writeCredentialFiles } from './credential-files.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BLOCK = Number(process.env.BENCH_BLOCK ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const AUTHORITY = '127.0.0.1:8443';

/* eslint-disable @typescript-eslint/no-explicit-any -- two builds are loaded by path: their types are not this file's */
type Any = any;

interface Build {
  label: string;
  gate: Any;
  headers: Any;
  peer: Any;
}

interface Case {
  name: string;
  path: string;
  method: string;
  /** Raw header lines of the request (as llhttp gives them), fresh per request where they must differ. */
  raw(i: number): string[];
  body?: Buffer;
}

function run(root: string, args: string[]): string {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'meshward.js'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshward ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function loadBuild(label: string, root: string, tmp: string): Promise<Build> {
  const mod = (p: string) => import(join(root, 'dist', 'src', p));
  const [{ parseSidecarConfigText }, { parsePolicy }, { Authenticator }, { LocalReplayStore }, { Gate }, { SidecarMetrics }, headers] = await Promise.all([
    mod('sidecar/config.js'), mod('sidecar/policy/policy.js'), mod('sidecar/auth/authenticator.js'), mod('sidecar/auth/replay.js'),
    mod('sidecar/http/gate.js'), mod('sidecar/observe/metrics.js'), mod('sidecar/http/headers.js'),
  ]);
  const { readFileSync } = await import('node:fs');
  const configPath = join(tmp, 'sidecar.yaml');
  const config = parseSidecarConfigText(readFileSync(configPath, 'utf8'), configPath);
  const policy = parsePolicy(readFileSync(join(tmp, 'policy.yaml'), 'utf8'), join(tmp, 'policy.yaml'));
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
  const metrics = new SidecarMetrics({ processMetrics: false });
  const authenticator = new Authenticator({ config: config.credentials, logger, metrics, replay: new LocalReplayStore(config.credentials.hmac.maxSkewMs) });
  authenticator.start();
  const gate = new Gate({ policy: () => policy, logger, metrics, allowedLogLevel: 'silent', authenticator });
  const identity = Object.freeze({ id: FRONTEND, spiffeId: FRONTEND, ou: [], dns: [], subject: '', serialHex: '01', fingerprint: 'ab'.repeat(32), uri: FRONTEND });
  const conn = { id: 1, remoteAddress: '127.0.0.1', identity, principal: policy.principal(identity), policy, xfcc: `Hash=${'ab'.repeat(32)};URI=${FRONTEND}` };
  return { label, gate, headers, peer: gate.peer(conn) };
}

/** One request as http1.ts's onRequest and authenticate() handle it, minus the sockets. Returns the status. */
function request(b: Build, c: Case, i: number): number | Promise<number> {
  const raw = c.raw(i);
  const scan = b.headers.scanHttp1Request(raw, false, false);
  const d = b.gate.decide(b.peer, c.method, c.path);
  if (!d.allow) return d.status;
  if (d.pending === undefined) {
    b.headers.appendIdentity(scan.headers, b.peer.ids);
    return 200;
  }
  const fields = b.headers.credentialHeaders(raw, d.pending.hmac);
  const q = c.path.indexOf('?');
  const req: Any = { method: c.method, scheme: 'https', authority: scan.host ?? '', path: q < 0 ? c.path : c.path.slice(0, q), headers: fields };
  const authPeer = b.gate.authPeer(b.peer);
  if (authPeer !== undefined) req.peer = authPeer;
  if (c.body !== undefined) req.body = { sha256: hash('sha256', c.body, 'buffer') };
  const finish = (final: Any): number => {
    if (!final.allow) return final.status;
    b.headers.stripCredentials(scan.headers, d.pending.kinds);
    const ids = final.principals !== undefined ? { xfcc: b.peer.ids.xfcc, clientId: b.peer.ids.clientId, scopes: final.scopes ?? '', principal: final.principals ?? '' } : b.peer.ids;
    b.headers.appendIdentity(scan.headers, ids);
    return 200;
  };
  const v = b.gate.authenticate(b.peer, d, req);
  return v instanceof Promise ? v.then(finish) : finish(v);
}

/** `s` as a flat one-byte string (a copy through bytes), the kind llhttp makes. */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'meshward-bench-step-'));
  try {
    const { plainKey, hmac: hmacKey, token } = await writeCredentialFiles(tmp, (args) => run(ROOT, args));
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(join(tmp, 'sidecar.yaml'), stringify({
      identity: { dir: './identity' },
      inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:1' },
      policy: './policy.yaml',
      credentials: { apiKeys: './apikeys.yaml', jwt: [JWT_ISSUER] },
    }));
    const builds: Build[] = [];
    const base = process.env.BENCH_BASELINE_ROOT;
    if (base !== undefined) builds.push(await loadBuild('before', base, tmp));
    builds.push(await loadBuild(base !== undefined ? 'after' : 'this build', ROOT, tmp));

    const body = randomBytes(1024);
    const digest = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
    const { signRequest } = await import(join(ROOT, 'dist', 'src', 'auth', 'http-signature.js'));
    // Every HMAC request needs a signature of its own (a repeated one is a replay): made up front.
    const total = BLOCK * (ROUNDS + 2) * builds.length + 10;
    const signatures: string[][] = Array.from({ length: total }, (_, n) => {
      const sig = signRequest(
        { method: 'POST', scheme: 'https', authority: AUTHORITY, path: '/hmac', headers: { 'content-digest': digest }, body: { sha256: Buffer.alloc(32) } },
        { keyId: hmacKey.id, secret: Buffer.from(hmacKey.secret, 'base64'), created: now, nonce: `n${n}` },
      );
      // Flat strings, as llhttp hands header values over: signRequest's template literals are V8 cons strings,
      // which the first charCodeAt of each request would flatten (a copy the sidecar never makes).
      return ['content-digest', digest, 'signature-input', flat(sig['signature-input']), 'signature', flat(sig.signature)];
    });
    let nextSignature = 0;
    const common = ['Host', AUTHORITY, 'User-Agent', 'bench', 'Accept', '*/*'];
    const cases: Case[] = [
      { name: 'mTLS only (GET)', path: '/mtls', method: 'GET', raw: () => [...common] },
      { name: 'mTLS + API key', path: '/apikey', method: 'GET', raw: () => [...common, 'x-api-key', plainKey] },
      { name: 'mTLS + JWT (repeated token)', path: '/jwt', method: 'GET', raw: () => [...common, 'authorization', `Bearer ${token}`] },
      { name: 'mTLS + HMAC, 1 KiB body', path: '/hmac', method: 'POST', body, raw: () => [...common, 'Content-Length', '1024', ...signatures[nextSignature++]!] },
    ];
    // BENCH_CASES=hmac (words matched in the case names, comma-separated; mTLS only always runs) runs only those cases.
    const only = (process.env.BENCH_CASES ?? '').toLowerCase().split(',').filter((w) => w !== '');
    if (only.length > 0) cases.splice(1, cases.length - 1, ...cases.slice(1).filter((c) => only.some((w) => c.name.toLowerCase().includes(w))));
    const block = async (b: Build, c: Case): Promise<number> => {
      const start = process.cpuUsage();
      for (let i = 0; i < BLOCK; i++) {
        const s = request(b, c, i);
        const status = typeof s === 'number' ? s : await s;
        if (status !== 200) throw new Error(`${b.label} ${c.name}: status ${status}`);
      }
      const used = process.cpuUsage(start);
      return (used.user + used.system) / BLOCK;
    };
    // Warm-up: JIT, the JWT cache (its first verification is asynchronous), the proven-key cache.
    for (let r = 0; r < 2; r++) for (const c of cases) for (const b of builds) await block(b, c);
    const results = new Map<string, number[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) {
        for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
          const k = `${b.label}\n${c.name}`;
          const us = await block(b, c);
          results.set(k, [...(results.get(k) ?? []), us]);
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const lines = [
      `## The credential step in process (CPU µs per request, median of ${ROUNDS} blocks of ${BLOCK}, builds interleaved)`,
      '',
      `| case | ${builds.map((b) => b.label).join(' | ')} | ${builds.map((b) => `extra over mTLS only, ${b.label}`).join(' | ')} |${builds.length > 1 ? ' extra after/before |' : ''}`,
      `|---|${builds.map(() => '---:|').join('')}${builds.map(() => '---:|').join('')}${builds.length > 1 ? '---:|' : ''}`,
    ];
    for (const c of cases) {
      const us = builds.map((b) => median(results.get(`${b.label}\n${c.name}`)!));
      const extra = builds.map((b, i) => us[i]! - median(results.get(`${b.label}\n${cases[0]!.name}`)!));
      lines.push(`| ${c.name} | ${us.map((u) => u.toFixed(2)).join(' | ')} | ${extra.map((e) => e.toFixed(2)).join(' | ')} |${builds.length > 1 ? ` ${c === cases[0] ? '' : (extra[1]! / extra[0]!).toFixed(2)} |` : ''}`);
    }
    lines.push('', 'mTLS only: decide, header scan, identity headers. The others add: raw credential headers, AuthRequest (HMAC: SHA-256 of the body),',
      'gate.authenticate (check, replay cache, authorize, metrics), credential headers stripped, x-mesh-principal. No sockets, TLS or event loop.');
    process.stdout.write(`${lines.join('\n')}\n`);
    for (const b of builds) b.gate.authenticator.close();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
