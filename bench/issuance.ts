// Issuance benchmark (`make bench`, first part): certificates per second, beside the raw node:crypto ECDSA
// P-256 signing rate measured in the same run, for both stores:
//   - in process: Authority.signCsr (CSR parse + signature check + rules + TBS + signature + insert), one
//     call at a time and 50 at once (the signature check and the signing run on libuv's thread pool, the
//     inserts share commits), on SQLite (D/ca.db) and on PostgreSQL, with this process's CPU per certificate;
//   - through the gRPC API: Sign RPCs against a `meshward ca serve` process from 50 concurrent clients
//     renewing over mTLS (bench/sign-rpc.ts), on SQLite and on PostgreSQL, with p50/p99 latency and the
//     server's CPU time per Sign (user + system, every thread): unlike the rate it holds on a busy machine.
// PostgreSQL is a throwaway cluster from the machine's binaries (test/support/postgres.ts) with its default
// durability (fsync and synchronous commit on). Targets (issue 12): SQLite >= 25% of raw signing,
// PostgreSQL >= 15%, Sign p99 <= 50 ms at 50 clients. Prints Markdown; every measurement is bounded in time.
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { createCsr, parseCsr } from '../src/pki/csr.js';
import { generateKeyPair } from '../src/pki/keys.js';
import { PostgresCluster } from '../test/support/postgres.js';
import { measureSignRpc, type SignRpcResult } from './sign-rpc.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const RPC_SECONDS = Number(process.env.SIGN_BENCH_SECONDS ?? 10);
const CLIENTS = 50;
const MAX_ITERATIONS = 5_000_000;

interface Rate { perSecond: number; count: number; cpuUs: number }

/**
 * Calls (and awaits) `fn` until `seconds` have passed, from `concurrency` callers at once; returns operations
 * per second and this process's CPU time (user + system, thread pool included) per operation.
 */
async function rate(seconds: number, fn: () => unknown, concurrency = 1): Promise<Rate> {
  for (let i = 0; i < 200; i++) await fn(); // warm-up (JIT, caches)
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  let now = start;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (now < limit && count < MAX_ITERATIONS) {
      for (let i = 0; i < 50; i++) await fn();
      count += 50;
      now = process.hrtime.bigint();
    }
  }));
  now = process.hrtime.bigint();
  const used = process.cpuUsage(cpu);
  return { perSecond: count / (Number(now - start) / 1e9), count, cpuUs: (used.user + used.system) / count };
}

/** Authority.signCsr in this process, one at a time and CLIENTS at once, on the store `store` (undefined: D/ca.db). */
async function inProcess(dir: string, store: string | undefined): Promise<Rate & { concurrent: Rate; insertUs: number }> {
  const now = new Date();
  const ca = await Authority.init(dir, { trustDomain: 'bench.example', store }, now);
  try {
    const keys = generateKeyPair('ec-p256');
    const csr = createCsr({ subject: {}, uris: ['spiffe://bench.example/ns/bench/sa/client'] }, keys);
    const issuance = await rate(SECONDS, () => ca.signCsr(csr, {}, now));
    const concurrent = await rate(SECONDS, () => ca.signCsr(csr, {}, now), CLIENTS);
    const leaf = (await ca.signCsr(csr, {}, now)).chainDer[0]!;
    let n = 0;
    const insert = await rate(Math.max(0.5, SECONDS / 3), () => ca.store.insertCertificate(`bench${(n++).toString(16).padStart(27, '0')}`, 'spiffe://bench.example/x', 'bench', now, now, leaf));
    return { ...issuance, concurrent, insertUs: 1e6 / insert.perSecond };
  } finally {
    await ca.close();
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'meshward-bench-'));
  let cluster: PostgresCluster | undefined;
  try {
    // Raw signing: a TBSCertificate-sized message, the same curve and hash as a leaf signature. Measured
    // before and after the rest, and averaged, so load on the machine that changes during the run shows.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const message = randomBytes(420);
    const rawSign = () => {
      sign('sha256', message, privateKey);
    };
    const rawBefore = await rate(SECONDS, rawSign);

    cluster = await PostgresCluster.start({ durable: true });
    const sqliteLocal = await inProcess(join(root, 'sqlite'), undefined);
    const postgresLocal = await inProcess(join(root, 'postgres'), await cluster.createDatabase());
    const sqliteRpc = await measureSignRpc({ store: 'sqlite', clients: CLIENTS, seconds: RPC_SECONDS });
    const postgresRpc = await measureSignRpc({ store: await cluster.createDatabase(), clients: CLIENTS, seconds: RPC_SECONDS });

    const rawAfter = await rate(SECONDS, rawSign);
    const raw = (rawBefore.perSecond + rawAfter.perSecond) / 2;
    const rawCpuUs = (rawBefore.cpuUs + rawAfter.cpuUs) / 2;

    // Where the time goes (shorter runs): the parts an issuance cannot skip.
    const part = Math.max(0.5, SECONDS / 3);
    const keys = generateKeyPair('ec-p256');
    const csr = createCsr({ subject: {}, uris: ['spiffe://bench.example/ns/bench/sa/client'] }, keys);
    const signature = sign('sha256', message, privateKey);
    const rawVerify = await rate(part, () => {
      verify('sha256', message, keys.publicKey, signature);
    });
    const csrParse = await rate(part, () => {
      parseCsr(csr);
    });
    const jwk = keys.publicKey.export({ format: 'jwk' });
    const keyImport = await rate(part, () => {
      createPublicKey({ key: jwk, format: 'jwk' });
    });

    const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const us = (perSecond: number) => (1e6 / perSecond).toFixed(0);
    // The ratio of CPU time: raw signing's µs over the issuance's CPU µs per certificate. Unlike the rate ratio
    // it does not move with the machine's load, and it shows what one core could give.
    const cpuRatio = (cpuUs: number, target: number) => `${pct(rawCpuUs / cpuUs)} (target >= ${pct(target)}: ${met(rawCpuUs / cpuUs >= target)})`;
    const rpcRow = (what: string, r: SignRpcResult, target: number) =>
      `| ${what} | ${r.perSecond.toFixed(0)} certs/s | ${pct(r.perSecond / raw)} (target >= ${pct(target)}: ${met(r.perSecond / raw >= target)}) | ${r.serverCpuUs.toFixed(0)} | ${cpuRatio(r.serverCpuUs, target)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} (target <= 50: ${met(r.p99 <= 50)}) | ${r.count} | ${r.failures} |`;
    const localRow = (what: string, r: Rate, target: number) =>
      `| ${what} | ${r.perSecond.toFixed(0)} certs/s | ${pct(r.perSecond / raw)} (target >= ${pct(target)}: ${met(r.perSecond / raw >= target)}) | ${r.cpuUs.toFixed(0)} | ${cpuRatio(r.cpuUs, target)} | | | ${r.count} | |`;
    const lines = [
      '## Certificate issuance (EC P-256) against raw signing, same run',
      '',
      `Raw signing ${raw.toFixed(0)} signatures/s (mean of ${rawBefore.perSecond.toFixed(0)} before and ${rawAfter.perSecond.toFixed(0)} after the issuance runs, one core).`,
      `gRPC: \`meshward ca serve\` (one process) and ${CLIENTS} concurrent clients renewing over mTLS (one process), ${RPC_SECONDS} s each after a warm-up.`,
      'PostgreSQL: a local throwaway cluster with default durability (fsync, synchronous_commit on); SQLite: WAL, synchronous=NORMAL.',
      `CPU per certificate: the serving process's user + system time (every thread) divided by the certificates issued; the CPU ratio is raw signing's ${rawCpuUs.toFixed(1)} µs over it.`,
      '',
      '| measurement | rate | ratio to raw signing (rate) | CPU µs per certificate | ratio to raw signing (CPU) | p50 (ms) | p99 (ms) | count | failed |',
      '|---|---:|---|---:|---|---:|---:|---:|---:|',
      `| raw node:crypto ECDSA P-256 sign | ${raw.toFixed(0)} signatures/s | 100% | ${rawCpuUs.toFixed(1)} | 100% | | | ${rawBefore.count + rawAfter.count} | |`,
      rpcRow(`Sign through gRPC, SQLite, ${CLIENTS} clients`, sqliteRpc, 0.25),
      rpcRow(`Sign through gRPC, PostgreSQL, ${CLIENTS} clients`, postgresRpc, 0.15),
      localRow('Authority.signCsr in process, SQLite, one at a time', sqliteLocal, 0.25),
      localRow(`Authority.signCsr in process, SQLite, ${CLIENTS} at once`, sqliteLocal.concurrent, 0.25),
      localRow('Authority.signCsr in process, PostgreSQL, one at a time', postgresLocal, 0.15),
      localRow(`Authority.signCsr in process, PostgreSQL, ${CLIENTS} at once`, postgresLocal.concurrent, 0.15),
      '',
      'Cost per operation, same run:',
      '',
      '| part | µs |',
      '|---|---:|',
      `| one issuance in process, SQLite | ${us(sqliteLocal.perSecond)} |`,
      `| one issuance in process, PostgreSQL | ${us(postgresLocal.perSecond)} |`,
      `| raw ECDSA P-256 sign | ${us(raw)} |`,
      `| raw ECDSA P-256 verify (the CSR's proof of possession needs one) | ${us(rawVerify.perSecond)} |`,
      `| the CSR's public key imported (JWK, as pki/certificate.ts readPublicKey does) | ${us(keyImport.perSecond)} |`,
      `| CSR parse + signature check (pki/csr.ts parseCsr) | ${us(csrParse.perSecond)} |`,
      `| Sign through gRPC, server CPU, SQLite / PostgreSQL | ${sqliteRpc.serverCpuUs.toFixed(0)} / ${postgresRpc.serverCpuUs.toFixed(0)} |`,
      `| one SQLite insert, own transaction | ${sqliteLocal.insertUs.toFixed(0)} |`,
      `| one PostgreSQL insert, own transaction (a round trip and a commit) | ${postgresLocal.insertUs.toFixed(0)} |`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cluster?.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
