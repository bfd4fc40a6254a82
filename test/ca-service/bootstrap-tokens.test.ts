// Bootstrap tokens end to end: `meshward token create` → Sign over TLS. Single use (also across a CA
// restart), expiry, binding to one SPIFFE ID, and nothing written for a refused request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import Database from '../../src/ca/store/sqlite-binding.js';
import { join } from 'node:path';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { createBootstrapToken, isBootstrapTokenShape, redeemBootstrapToken, tokenHash, TOKEN_BYTES } from '../../src/ca/tokens.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { publicKeyMatches } from '../../src/pki/keys.js';
import { runCli } from '../support/cli.js';
import type { CaServer } from '../../src/ca/server/server.js';
import { TD, clientFor, csrFor, makeCa, memoryLogger, removeDir, startServer, storeCounts, tempDir, trySign } from './harness.js';

const A = `spiffe://${TD}/ns/shop/sa/frontend`;
const B = `spiffe://${TD}/ns/shop/sa/orders`;

describe('bootstrap tokens (unit)', () => {
  let root: string;
  let store: SqliteStore;
  before(async () => {
    root = tempDir();
    store = SqliteStore.open(join(await makeCa(root), 'ca.db'));
  });
  after(async () => {
    await store.close();
    removeDir(root);
  });

  it('makes 256-bit base64url tokens and stores only their SHA-256', async () => {
    const now = new Date();
    const made = await createBootstrapToken(store, A, 60_000, now);
    assert.ok(isBootstrapTokenShape(made.token));
    assert.equal(Buffer.from(made.token, 'base64url').length, TOKEN_BYTES);
    assert.ok(TOKEN_BYTES * 8 >= 128);
    const db = new Database(store.description, { readonly: true });
    try {
      const rows = db.prepare('SELECT hash, spiffe_id FROM tokens').all() as { hash: string; spiffe_id: string }[];
      assert.ok(rows.some((r) => r.hash === tokenHash(made.token) && r.spiffe_id === A));
      assert.ok(rows.every((r) => r.hash !== made.token && !r.hash.includes(made.token)));
    } finally {
      db.close();
    }
    assert.equal(await redeemBootstrapToken(store, made.token, now), A);
    await assert.rejects(() => redeemBootstrapToken(store, made.token, now), /already used/);
  });

  it('refuses expired, unknown and malformed tokens as unauthenticated', async () => {
    const now = new Date();
    const made = await createBootstrapToken(store, A, 1000, now);
    await assert.rejects(() => redeemBootstrapToken(store, made.token, new Date(now.getTime() + 1000)), (e: Error & { code?: string }) => e.code === 'unauthenticated' && /expired/.test(e.message));
    const unknown = Buffer.alloc(32, 7).toString('base64url');
    await assert.rejects(() => redeemBootstrapToken(store, unknown, now), /not known/);
    await assert.rejects(() => redeemBootstrapToken(store, 'short', now), (e: Error & { code?: string }) => e.code === 'unauthenticated');
  });

  it('refuses bad lifetimes and SPIFFE IDs when creating', async () => {
    const now = new Date();
    await assert.rejects(() => createBootstrapToken(store, A, 0, now), /positive/);
    await assert.rejects(() => createBootstrapToken(store, A, 30 * 24 * 3_600_000, now), /maximum/);
    await assert.rejects(() => createBootstrapToken(store, `spiffe://${TD}`, 60_000, now), /path/);
  });
});

describe('bootstrap tokens over gRPC', () => {
  let root: string;
  let dir: string;
  let server: CaServer;
  const audit = memoryLogger();

  before(async () => {
    root = tempDir();
    dir = await makeCa(root);
    server = await startServer(dir, { logger: audit.logger });
  });
  after(async () => {
    await server.close();
    removeDir(root);
  });

  async function cliToken(id: string, ttl = '10m'): Promise<string> {
    const r = await runCli(['token', 'create', '--ca-dir', dir, '--spiffe-id', id, '--ttl', ttl]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.ok(isBootstrapTokenShape(token), `token create printed ${JSON.stringify(r.stdout)}`);
    return token;
  }

  it('signs once with a token made by the CLI while the server runs, then refuses it, also after a restart', async () => {
    const token = await cliToken(A);
    const client = clientFor(server, dir);
    try {
      const { csr, keys } = csrFor(A);
      const first = await trySign(client, { csr, token, ttlSeconds: 600 });
      assert.ok(first.ok, JSON.stringify(first));
      const leaf = parseCertificate(first.res.certChain[0]!);
      assert.deepEqual(leaf.uris, [A]);
      assert.ok(publicKeyMatches(keys.privateKey, leaf.publicKey));
      assert.equal(first.res.certChain.length, 2);
      assert.ok(first.res.trustBundle.length >= 1);
      assert.equal(first.res.notAfter, Math.floor(leaf.notAfter.getTime() / 1000));
      assert.equal(first.res.serial, leaf.serialHex);

      const second = await trySign(client, { csr: csrFor(A).csr, token });
      assert.equal(second.ok, false);
      assert.equal(!second.ok && second.code, grpc.status.UNAUTHENTICATED);
      assert.match(!second.ok ? second.details : '', /already used/);
    } finally {
      client.close();
    }
    const line = audit.lines.find((l) => l.event === 'sign' && l.result === 'issued' && l.identity === A);
    assert.ok(line, 'an audit line for the issued certificate');
    assert.equal(line.method, 'token');
    assert.match(String(line.peer), /127\.0\.0\.1/);
    assert.ok(audit.lines.some((l) => l.event === 'sign' && l.result === 'refused' && l.code === 'UNAUTHENTICATED'));

    await server.close();
    server = await startServer(dir, { logger: audit.logger });
    const again = clientFor(server, dir);
    try {
      const third = await trySign(again, { csr: csrFor(A).csr, token });
      assert.equal(!third.ok && third.code, grpc.status.UNAUTHENTICATED);
    } finally {
      again.close();
    }
  });

  it('refuses an expired token', async () => {
    const token = await cliToken(A, '1s');
    await new Promise((r) => setTimeout(r, 1500));
    const client = clientFor(server, dir);
    try {
      const before = storeCounts(dir);
      const r = await trySign(client, { csr: csrFor(A).csr, token });
      assert.equal(!r.ok && r.code, grpc.status.UNAUTHENTICATED);
      assert.match(!r.ok ? r.details : '', /expired/);
      assert.deepEqual(storeCounts(dir), before);
    } finally {
      client.close();
    }
  });

  it('refuses a token for A with a CSR for B (PERMISSION_DENIED), writes nothing, and the token still works for A', async () => {
    const token = await cliToken(A);
    const client = clientFor(server, dir);
    try {
      const before = storeCounts(dir);
      const r = await trySign(client, { csr: csrFor(B).csr, token });
      assert.equal(!r.ok && r.code, grpc.status.PERMISSION_DENIED);
      assert.match(!r.ok ? r.details : '', /caller is spiffe:\/\/example\.org\/ns\/shop\/sa\/frontend/);
      assert.deepEqual(storeCounts(dir), before, 'no certificate and no token use recorded');
      const ok = await trySign(client, { csr: csrFor(A).csr, token });
      assert.ok(ok.ok, JSON.stringify(ok));
      assert.deepEqual(storeCounts(dir), { certificates: before.certificates + 1, usedTokens: before.usedTokens + 1 });
    } finally {
      client.close();
    }
  });

  it('refuses a call with no credential at all as UNAUTHENTICATED', async () => {
    const client = clientFor(server, dir);
    try {
      const before = storeCounts(dir);
      const r = await trySign(client, { csr: csrFor(A).csr });
      assert.equal(!r.ok && r.code, grpc.status.UNAUTHENTICATED);
      assert.match(!r.ok ? r.details : '', /no credential/);
      assert.deepEqual(storeCounts(dir), before);
    } finally {
      client.close();
    }
  });

  it('token create refuses an identity outside the trust domain', async () => {
    const r = await runCli(['token', 'create', '--ca-dir', dir, '--spiffe-id', 'spiffe://other.org/ns/a/sa/b']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /outside this CA's trust domain/);
  });
});
