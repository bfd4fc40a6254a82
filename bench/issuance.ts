// Issuance benchmark (`make bench`, first part): how many CSRs per second Authority.signCsr turns into
// stored certificates (CSR parse + signature check + rules + TBS encoding + ECDSA P-256 signature + SQLite
// insert), beside the raw node:crypto ECDSA P-256 signing rate measured in the same run. Target: issuance
// at least 25% of raw signing. Prints a Markdown table; each measurement is bounded in time.
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority } from '../src/ca/authority.js';
import { createCsr, parseCsr } from '../src/pki/csr.js';
import { generateKeyPair } from '../src/pki/keys.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const MAX_ITERATIONS = 5_000_000;

/** Calls (and awaits) `fn` in batches until `seconds` have passed; returns operations per second. */
async function rate(seconds: number, fn: () => unknown): Promise<{ perSecond: number; count: number }> {
  for (let i = 0; i < 200; i++) await fn(); // warm-up (JIT, caches)
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  let now = start;
  while (now < limit && count < MAX_ITERATIONS) {
    for (let i = 0; i < 50; i++) await fn();
    count += 50;
    now = process.hrtime.bigint();
  }
  return { perSecond: count / (Number(now - start) / 1e9), count };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshward-bench-'));
  try {
    // Raw signing: a TBSCertificate-sized message, the same curve and hash as a leaf signature.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const message = randomBytes(420);
    const raw = await rate(SECONDS, () => {
      sign('sha256', message, privateKey);
    });

    const now = new Date();
    const ca = await Authority.init(join(dir, 'ca'), { trustDomain: 'bench.example' }, now);
    try {
      const keys = generateKeyPair('ec-p256');
      const csr = createCsr({ subject: {}, uris: ['spiffe://bench.example/ns/bench/sa/client'] }, keys);
      const issuance = await rate(SECONDS, () => ca.signCsr(csr, {}, now));
      const ratio = issuance.perSecond / raw.perSecond;
      // Where the time goes (shorter runs): the parts an issuance cannot skip.
      const part = Math.max(0.5, SECONDS / 3);
      const signature = sign('sha256', message, privateKey);
      const rawVerify = await rate(part, () => {
        verify('sha256', message, keys.publicKey, signature);
      });
      const csrParse = await rate(part, () => {
        parseCsr(csr);
      });
      const leaf = (await ca.signCsr(csr, {}, now)).chainDer[0]!;
      let n = 0;
      const insert = await rate(part, () => ca.store.insertCertificate(`bench${(n++).toString(16).padStart(27, '0')}`, 'spiffe://bench.example/x', 'bench', now, now, leaf));
      const us = (r: { perSecond: number }) => (1e6 / r.perSecond).toFixed(0);
      const lines = [
        '## Certificate issuance (EC P-256, one process)',
        '',
        '| measurement | rate | count |',
        '|---|---:|---:|',
        `| raw node:crypto ECDSA P-256 sign | ${raw.perSecond.toFixed(0)} signatures/s | ${raw.count} |`,
        `| Authority.signCsr (CSR parse + checks + TBS + signature + SQLite insert) | ${issuance.perSecond.toFixed(0)} certs/s | ${issuance.count} |`,
        `| ratio issuance / raw signing | ${(ratio * 100).toFixed(1)}% (target >= 25%: ${ratio >= 0.25 ? 'met' : 'NOT met'}) | |`,
        '',
        'Cost per operation, same run:',
        '',
        '| part | µs |',
        '|---|---:|',
        `| one issuance (Authority.signCsr) | ${us(issuance)} |`,
        `| raw ECDSA P-256 sign | ${us(raw)} |`,
        `| raw ECDSA P-256 verify (the CSR's proof of possession needs one) | ${us(rawVerify)} |`,
        `| CSR parse + signature check (pki/csr.ts parseCsr) | ${us(csrParse)} |`,
        `| one SQLite insert, own transaction (WAL, synchronous=NORMAL) | ${us(insert)} |`,
        '',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await ca.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
