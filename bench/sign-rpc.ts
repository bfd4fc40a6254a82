// Benchmark: Sign RPCs per second against `meshward ca serve` (run as its own process) from 50 concurrent
// clients, each renewing its own EC P-256 certificate over mTLS (the steady-state load of a fleet of
// agents), and the latency distribution. Bounded in time: warm-up plus --seconds (default 10).
// Prints one markdown table row; run after a build: node dist/bench/sign-rpc.js [--seconds N] [--clients N]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Authority } from '../src/ca/authority.js';
import { CaClient } from '../src/agent/client.js';
import { caServerSpiffeId } from '../src/ca/server/proto.js';
import { createCsr } from '../src/pki/csr.js';
import { generateKeyPair } from '../src/pki/keys.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', Number(process.env.SIGN_BENCH_SECONDS ?? 10));
const CLIENTS = arg('clients', 50);
const WARMUP_MS = 1500;
const TD = 'bench.example.org';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'meshward-bench-'));
  const dir = join(root, 'ca');
  const authority = await Authority.init(dir, { trustDomain: TD }, new Date());
  const identities = [];
  for (let i = 0; i < CLIENTS; i++) {
    const spiffeId = `spiffe://${TD}/ns/bench/sa/client-${i}`;
    const issued = await authority.issue({ spiffeId, ttlMs: 3_600_000 }, new Date());
    const keys = generateKeyPair('ec-p256');
    identities.push({ spiffeId, issued, csr: createCsr({ subject: {}, uris: [spiffeId] }, keys) });
  }
  const bundle = Buffer.from(await authority.trustBundlePem());
  await authority.close();

  const server = spawn(process.execPath, [join(REPO, 'bin', 'meshward.js'), 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0',
    '--sign-rate', '1000000', '--sign-burst', '1000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    const end = measureFrom + SECONDS * 1000;
    const latencies: number[] = [];
    let failures = 0;
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
    const elapsed = (Date.now() - measureFrom) / 1000;
    latencies.sort((a, b) => a - b);
    const rps = latencies.length / elapsed;
    process.stdout.write('| case | Sign RPCs/s | p50 (ms) | p99 (ms) | failed |\n|---|---|---|---|---|\n');
    process.stdout.write(`| Sign, ${CLIENTS} concurrent clients, EC P-256, mTLS renewal (${SECONDS} s) | ${rps.toFixed(0)} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${failures} |\n`);
  } finally {
    for (const c of clients) c.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`sign-rpc bench failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
