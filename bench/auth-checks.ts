// Credential check micro-benchmark (`make bench`, part "auth"): operations per second of each per-request
// check in src/auth, on one core, without the network: the API key check (header read, CRC32, SHA-256,
// constant-time compare) in a set of 1000 keys, HMAC verification of a signed POST with a 1 KiB body (with and
// without the body's SHA-256, which the sidecar computes while reading the body), JWT verification cold (a
// new token each time: jose signature check) and cached (the same token repeated, as real clients do), and
// the replay cache. Prints a Markdown table; each measurement is bounded in time.
import { createHash, randomBytes } from 'node:crypto';
import { checkApiKey, generateApiKey, hashSecret } from '../src/auth/api-key.js';
import { signRequest, verifyHttpSignature } from '../src/auth/http-signature.js';
import { keySetFromJwks } from '../src/auth/jwks.js';
import { JwtVerifier } from '../src/auth/jwt.js';
import type { ApiKeyRecord } from '../src/auth/key-file.js';
import { ApiKeySet, keyEntry } from '../src/auth/key-set.js';
import { ReplayCache } from '../src/auth/replay-cache.js';
import type { AuthRequest } from '../src/auth/verdict.js';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const MAX_ITERATIONS = 20_000_000;

/** Calls `fn` in batches until `seconds` have passed; returns operations per second. */
function rate(seconds: number, fn: (i: number) => void): number {
  for (let i = 0; i < 1000; i++) fn(i);
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  let now = start;
  while (now < limit && count < MAX_ITERATIONS) {
    for (let i = 0; i < 100; i++) fn(count + i);
    count += 100;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

/** The same for an async operation (awaited one at a time, as one request would be). */
async function rateAsync(seconds: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await fn(i);
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let count = 0;
  while (process.hrtime.bigint() < limit && count < MAX_ITERATIONS) await fn(count++);
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

function keyRecord(id: string, secret: string, hmac: Buffer): ApiKeyRecord {
  return {
    id, name: id, scopes: ['orders:read', 'orders:write'], created: new Date(0), expires: new Date(Date.now() + 86_400_000),
    secretHashes: [{ sha256: hashSecret(secret) }], hmacSecrets: [{ secret: hmac }],
  };
}

async function main(): Promise<void> {
  const rows: [string, number, string][] = [];
  const now = Date.now();

  // API keys: one of 1000 keys in the set, sent as x-api-key.
  const generated = Array.from({ length: 1000 }, () => ({ ...generateApiKey(), hmac: randomBytes(32) }));
  const keys = ApiKeySet.fromFile({ keys: generated.map((g) => keyRecord(g.id, g.secret, g.hmac)) });
  const apiReq: AuthRequest = { method: 'GET', scheme: 'https', authority: 'orders.example.com', path: '/orders/42', headers: { 'x-api-key': generated[500]!.key } };
  if (!checkApiKey(apiReq, keys, now).ok) throw new Error('bench setup: API key refused');
  rows.push(['API key check, repeated key (x-api-key, 1000 keys)', rate(SECONDS, () => checkApiKey(apiReq, keys, now)), 'proven before: map lookup + expiry/revocation/binding']);
  // First use of a key: a set that remembers one key text, asked for 1000 different keys in turn.
  const forgetful = new ApiKeySet(generated.map((g) => keyEntry(keyRecord(g.id, g.secret, g.hmac))), 1);
  const apiReqs = generated.map((g): AuthRequest => ({ ...apiReq, headers: { 'x-api-key': g.key } }));
  rows.push(['API key check, first use of a key', rate(SECONDS, (i) => checkApiKey(apiReqs[i % apiReqs.length]!, forgetful, now)), 'format + CRC32 + SHA-256 + constant-time compare']);

  // HMAC: a POST with a query and a 1 KiB JSON body, signed over @method @authority @path @query content-digest.
  const body = Buffer.from(JSON.stringify({ items: 'x'.repeat(1000) }).slice(0, 1024));
  const bodySha = createHash('sha256').update(body).digest();
  const base: AuthRequest = { method: 'POST', scheme: 'https', authority: 'orders.example.com', path: '/payments', query: 'currency=EUR', headers: { 'content-type': 'application/json', 'content-digest': `sha-256=:${bodySha.toString('base64')}:` }, body: { sha256: bodySha } };
  const signer = generated[7]!;
  const hmacReq: AuthRequest = { ...base, headers: { ...base.headers, ...signRequest(base, { keyId: signer.id, secret: signer.hmac, created: Math.floor(now / 1000) }) } };
  if (!verifyHttpSignature(hmacReq, keys, now, { maxSkewMs: 300_000 }).ok) throw new Error('bench setup: signature refused');
  rows.push(['HMAC verify, 1 KiB body (digest given)', rate(SECONDS, () => verifyHttpSignature(hmacReq, keys, now, { maxSkewMs: 300_000 })), 'parse + base + HMAC + digest compare']);
  rows.push(['HMAC verify, 1 KiB body (+ body SHA-256)', rate(SECONDS, () => {
    const sha256 = createHash('sha256').update(body).digest();
    verifyHttpSignature({ ...hmacReq, body: { sha256 } }, keys, now, { maxSkewMs: 300_000 });
  }), 'what the sidecar does per signed request']);
  // Replay cache: 1 000 000 fresh replay keys as verifyHttpSignature makes them, with their `created`; time per
  // remember() and the table's bytes per live entry (typed arrays: 12 bytes a slot, 1/4 to 3/4 of slots used).
  const sigs = Array.from({ length: 1_000_000 }, () => `${signer.id}:${randomBytes(32).toString('base64')}`);
  const replay = new ReplayCache(300_000);
  const nowS = Math.floor(now / 1000);
  global.gc?.();
  const buffersBefore = process.memoryUsage().arrayBuffers;
  const t0 = process.hrtime.bigint();
  for (const s of sigs) replay.remember(s, now, nowS);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const perEntry = replay.bytes / replay.size;
  const measured = (process.memoryUsage().arrayBuffers - buffersBefore) / replay.size;
  rows.push(['replay cache remember (fresh key, 1M entries, growth included)', sigs.length / seconds,
    `${perEntry.toFixed(1)} bytes per remembered signature (${replay.capacity.toLocaleString('en-US')} slots; arrayBuffers grew ${measured.toFixed(1)}/entry)`]);
  const t1 = process.hrtime.bigint();
  for (const s of sigs) replay.remember(s, now + 1000, nowS);
  rows.push(['replay cache remember (replay found, 1M entries)', sigs.length / (Number(process.hrtime.bigint() - t1) / 1e9), 'the lookup alone']);

  // JWT: ES256 issuer; cold = a different token each time (cache of one entry), cached = one token repeated.
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwks = { keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  const issuer = 'https://auth.example.com';
  const tokens = await Promise.all(Array.from({ length: 500 }, (_, i) => new SignJWT({ iss: issuer, aud: 'orders-api', sub: `client-${i}`, scope: 'orders:read', exp: nowS + 3600, iat: nowS })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(pair.privateKey)));
  const cold = new JwtVerifier([{ issuer, audiences: ['orders-api'], algorithms: ['ES256'] }], { cacheEntries: 1 });
  cold.setKeys(issuer, keySetFromJwks(jwks, 'bench'));
  rows.push(['JWT verify ES256, cold (new token each time)', await rateAsync(SECONDS, (i) => cold.verify(tokens[i % tokens.length]!, now, undefined)), 'jose + WebCrypto signature check']);
  const warm = new JwtVerifier([{ issuer, audiences: ['orders-api'], algorithms: ['ES256'] }]);
  warm.setKeys(issuer, keySetFromJwks(jwks, 'bench'));
  const jwtReq: AuthRequest = { method: 'GET', scheme: 'https', authority: 'orders.example.com', path: '/orders', headers: { authorization: `Bearer ${tokens[0]}` } };
  const first = await warm.check(jwtReq, now);
  if (!first.ok) throw new Error(`bench setup: token refused: ${first.message}`);
  rows.push(['JWT check, cached (same token repeated)', rate(SECONDS, () => {
    const v = warm.check(jwtReq, now);
    if (v instanceof Promise) throw new Error('cache miss');
  }), 'synchronous: header read + map lookup + exp']);

  console.log('## Credential checks (src/auth, one core, no network)');
  console.log();
  console.log('| check | ops/s | µs/op | note |');
  console.log('|---|---:|---:|---|');
  for (const [name, perSecond, note] of rows) {
    console.log(`| ${name} | ${Math.round(perSecond).toLocaleString('en-US')} | ${(1e6 / perSecond).toFixed(2)} | ${note} |`);
  }
}

await main();
