// Shared set-up for the CA-service and agent tests: a fresh CA in a temp dir, the gRPC server started in
// process on 127.0.0.1:0, a client, CSRs, and a logger whose lines a test can read back (audit checks).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import Database from '../../src/ca/store/sqlite-binding.js';
import { pino, type Logger } from 'pino';
import { Authority } from '../../src/ca/authority.js';
import { CaServer, type CaServerOptions } from '../../src/ca/server/server.js';
import { CaClient } from '../../src/agent/client.js';
import { caServerSpiffeId, type SignRequest, type SignResponse } from '../../src/ca/server/proto.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair, type KeyPair, type KeyType } from '../../src/pki/keys.js';

export const TD = 'example.org';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'meshward-'));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A new CA in `<root>/ca` (its state in `store`, default D/ca.db); returns its directory. */
export async function makeCa(root: string, store?: string): Promise<string> {
  const dir = join(root, 'ca');
  await (await Authority.init(dir, { trustDomain: TD, store }, new Date())).close();
  return dir;
}

/** A pino logger that keeps every line as an object. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export async function startServer(dir: string, opts: Partial<CaServerOptions> = {}): Promise<CaServer> {
  return CaServer.start({ dir, listen: '127.0.0.1:0', logger: pino({ level: 'silent' }), bundlePollMs: 200, ...opts });
}

export function bundleOf(dir: string): Buffer {
  return readFileSync(join(dir, 'bundle.crt'));
}

export function clientFor(server: { port: number }, dir: string, mtls?: { keyPem: string; chainPem: string }): CaClient {
  return new CaClient({
    address: `127.0.0.1:${server.port}`,
    rootsPem: bundleOf(dir),
    caSpiffeId: caServerSpiffeId(TD),
    ...(mtls ? { clientKeyPem: Buffer.from(mtls.keyPem), clientChainPem: Buffer.from(mtls.chainPem) } : {}),
  });
}

export function csrFor(spiffeId: string, keyType: KeyType = 'ec-p256'): { csr: Buffer; keys: KeyPair } {
  const keys = generateKeyPair(keyType);
  return { csr: createCsr({ subject: {}, uris: [spiffeId] }, keys), keys };
}

export type SignOutcome = { ok: true; res: SignResponse } | { ok: false; code: grpc.status; details: string };

/** Calls Sign and returns the outcome instead of throwing (tests compare status codes). */
export async function trySign(client: CaClient, req: Partial<SignRequest>): Promise<SignOutcome> {
  try {
    const res = await client.sign({ csr: Buffer.alloc(0), token: '', ttlSeconds: 0, ...req }, 20_000);
    return { ok: true, res };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { ok: false, code: e.code, details: e.details };
  }
}

/**
 * Sends one Sign request (presenting `mtls` when given) that must be refused with `refused.code` and a
 * message matching `refused.reason`, and checks that the refusal wrote nothing (the store's row counts).
 */
export async function assertSignRefused(
  server: { port: number },
  dir: string,
  req: Partial<SignRequest>,
  refused: { code: grpc.status; reason: RegExp },
  mtls?: { keyPem: string; chainPem: string },
): Promise<void> {
  const client = clientFor(server, dir, mtls);
  try {
    const before = storeCounts(dir);
    const r = await trySign(client, req);
    assert.equal(!r.ok && r.code, refused.code, JSON.stringify(r));
    assert.match(!r.ok ? r.details : '', refused.reason);
    assert.deepEqual(storeCounts(dir), before);
  } finally {
    client.close();
  }
}

/** Row counts that must not change for a refused request. */
export function storeCounts(dir: string): { certificates: number; usedTokens: number } {
  const db = new Database(join(dir, 'ca.db'), { readonly: true, fileMustExist: true });
  try {
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return {
      certificates: count('SELECT COUNT(*) AS n FROM certificates'),
      usedTokens: count('SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NOT NULL'),
    };
  } finally {
    db.close();
  }
}
