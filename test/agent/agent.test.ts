// The renewal agent against a real CA server over TLS on 127.0.0.1: bootstrap with a token, at least three
// renewals of short certificates over mTLS while a reader on another thread checks every cert/key pair it
// reads, renewal without a token from a certificate already in the folder, riding out a CA outage longer
// than a renewal period, following WatchTrustBundle into ca.crt, and giving up with a clear message when
// it can no longer authenticate.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Agent, type RenewedEvent, type RetryEvent } from '../../src/agent/agent.js';
import { writeSecretFiles } from '../../src/agent/secret-dir.js';
import { Authority } from '../../src/ca/authority.js';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { createBootstrapToken } from '../../src/ca/tokens.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { runCli } from '../support/cli.js';
import { TD } from '../ca-service/harness.js';
import { waitFor } from '../support/poll.js';
import { useCa } from '../support/ca-fixture.js';

const ID = `spiffe://${TD}/ns/shop/sa/frontend`;

async function newToken(dir: string, spiffeId = ID): Promise<string> {
  const store = SqliteStore.open(join(dir, 'ca.db'));
  try {
    return (await createBootstrapToken(store, spiffeId, 600_000, new Date())).token;
  } finally {
    await store.close();
  }
}

function heldSerial(out: string): string {
  return parseCertificate(decodePem(readFileSync(join(out, 'tls.crt')))[0]!.der).serialHex;
}

/** A reader thread: resolves ..data once per round, reads tls.crt + tls.key from it, checks they match. */
function startPairReader(out: string): { stop: () => Promise<{ checks: number; mismatches: number; errors: string[] }> } {
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const fs = require('node:fs');
    const path = require('node:path');
    const crypto = require('node:crypto');
    let stop = false, checks = 0, mismatches = 0;
    const errors = [];
    parentPort.on('message', () => { stop = true; });
    function round() {
      if (stop) { parentPort.postMessage({ checks, mismatches, errors: errors.slice(0, 5) }); return; }
      try {
        const gen = path.join(workerData.out, fs.readlinkSync(path.join(workerData.out, '..data')));
        const cert = new crypto.X509Certificate(fs.readFileSync(path.join(gen, 'tls.crt')));
        const key = crypto.createPrivateKey(fs.readFileSync(path.join(gen, 'tls.key')));
        const pub = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
        checks++;
        if (!pub.equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) mismatches++;
      } catch (e) {
        if (e.code !== 'ENOENT') errors.push(String(e.message));
      }
      setTimeout(round, 2);
    }
    round();
  `, { eval: true, workerData: { out } });
  return {
    stop: () => new Promise((resolve, reject) => {
      worker.once('message', (m) => {
        void worker.terminate();
        resolve(m);
      });
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

describe('meshward agent', () => {
  const agents: Agent[] = [];
  after(async () => { // registered first, so the agents stop before the CA
    for (const a of agents) await a.stop();
  });
  const ca = useCa({ inProcess: { options: { signRateLimit: { ratePerSecond: 10, burst: 20 } } } });

  function agent(out: string, opts: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Agent {
    const a = new Agent({
      ca: `127.0.0.1:${ca.server.port}`,
      bundleFile: join(ca.dir, 'bundle.crt'),
      outDir: out,
      spiffeId: ID,
      backoff: { initialMs: 200, maxMs: 1000 },
      ...opts,
    });
    agents.push(a);
    return a;
  }

  it('bootstraps with a token, then renews at least 3 times over mTLS; a reader never sees a mismatched pair', async () => {
    const out = join(ca.root, 'renewals');
    const a = agent(out, { token: await newToken(ca.dir), ttlMs: 10_000 });
    const renewed: RenewedEvent[] = [];
    a.on('renewed', (e: RenewedEvent) => renewed.push(e));
    await a.start();
    assert.equal(renewed[0]?.method, 'token');
    const reader = startPairReader(out);
    let result;
    try {
      await waitFor('three renewals', () => renewed.length >= 4 || undefined, { timeoutMs: 90_000 });
    } finally {
      result = await reader.stop();
      await a.stop();
    }
    assert.deepEqual(renewed.slice(1, 4).map((e) => e.method), ['mtls', 'mtls', 'mtls']);
    assert.equal(new Set(renewed.map((e) => e.serialHex)).size, renewed.length, 'every renewal is a new certificate');
    assert.ok(result.checks > 0, 'the reader read pairs');
    assert.equal(result.mismatches, 0, 'no certificate beside a key of another generation');
    assert.deepEqual(result.errors, []);
    // The Secret layout.
    assert.match(readlinkSync(join(out, '..data')), /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$/);
    for (const name of ['tls.crt', 'tls.key', 'ca.crt']) assert.equal(readlinkSync(join(out, name)), `..data/${name}`);
    assert.ok(lstatSync(join(out, '..data')).isSymbolicLink());
    assert.equal(statSync(join(out, 'tls.key')).mode & 0o777, 0o600);
    assert.ok(readdirSync(out).filter((n) => n.startsWith('..2')).length <= 2, 'old generations are removed');
    assert.equal(heldSerial(out), renewed.at(-1)!.serialHex);
    assert.equal(decodePem(readFileSync(join(out, 'tls.crt'))).length, 2, 'leaf then intermediate');
    assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), readFileSync(join(ca.dir, 'bundle.crt'), 'utf8'));
  });

  it('with a valid certificate already in the folder, renews over mTLS without a token', async () => {
    const out = join(ca.root, 'existing');
    const first = agent(out, { token: await newToken(ca.dir), ttlMs: 30_000, once: true });
    await first.start();
    await first.stop();
    const before = heldSerial(out);
    // Certificates are backdated a minute, so from disk this 30 s certificate is already past 2/3.
    const second = agent(out, { spiffeId: undefined, ttlMs: 30_000 });
    const renewed: RenewedEvent[] = [];
    second.on('renewed', (e: RenewedEvent) => renewed.push(e));
    await second.start();
    await second.stop();
    assert.equal(renewed[0]?.method, 'mtls');
    assert.notEqual(heldSerial(out), before);
  });

  it('keeps its valid certificate through a CA outage longer than a renewal period and recovers when the CA returns', async () => {
    const out = join(ca.root, 'outage');
    const a = agent(out, { token: await newToken(ca.dir), ttlMs: 20_000, watchBundle: false });
    const renewed: RenewedEvent[] = [];
    const retries: RetryEvent[] = [];
    a.on('renewed', (e: RenewedEvent) => renewed.push(e));
    a.on('retry', (e: RetryEvent) => retries.push(e));
    await a.start();
    const serial = heldSerial(out);
    ca.server.kill();
    try {
      // Down past the renewal time: the agent tries, fails, backs off, and keeps the certificate it has.
      await waitFor('failed renewal attempts', () => retries.length >= 3 || undefined, { timeoutMs: 30_000 });
      assert.equal(heldSerial(out), serial, 'the current certificate stays in place');
      assert.ok(retries.every((r) => r.certificateValidUntil && r.certificateValidUntil.getTime() > Date.now() - 60_000));
      assert.equal(renewed.length, 1);
    } finally {
      await ca.restartServer();
    }
    await waitFor('renewal after the CA came back', () => renewed.length >= 2 || undefined, { timeoutMs: 30_000 });
    assert.equal(renewed[1]!.method, 'mtls');
    assert.notEqual(heldSerial(out), serial);
    await a.stop();
  });

  it('follows WatchTrustBundle into ca.crt after ca rotate --root', async () => {
    const out = join(ca.root, 'bundle');
    const a = agent(out, { token: await newToken(ca.dir), ttlMs: 600_000 });
    const bundles: unknown[] = [];
    a.on('bundle', (e) => bundles.push(e));
    await a.start();
    const keyBefore = readFileSync(join(out, 'tls.key'), 'utf8');
    assert.equal(decodePem(readFileSync(join(out, 'ca.crt'))).length, 1);
    const rotate = await runCli(['ca', 'rotate', '--dir', ca.dir, '--root']);
    assert.equal(rotate.code, 0, rotate.stderr);
    await waitFor('the new bundle in ca.crt', () => decodePem(readFileSync(join(out, 'ca.crt'))).length === 2 || undefined, { timeoutMs: 30_000 });
    assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), readFileSync(join(ca.dir, 'bundle.crt'), 'utf8'));
    assert.equal(readFileSync(join(out, 'tls.key'), 'utf8'), keyBefore, 'the certificate and key stay');
    assert.ok(bundles.length >= 1);
    await a.stop();
  });

  it('the CLI bootstraps with --once, and refuses a used token', async () => {
    const out = join(ca.root, 'cli-once');
    const token = await newToken(ca.dir);
    const args = ['agent', '--ca', `127.0.0.1:${ca.server.port}`, '--bundle', join(ca.dir, 'bundle.crt'), '--out', out, '--spiffe-id', ID, '--once'];
    const ok = await runCli([...args, '--token', token]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(parseCertificate(decodePem(readFileSync(join(out, 'tls.crt')))[0]!.der).uris, [ID]);
    const again = await runCli([...args.map((x) => (x === out ? join(ca.root, 'cli-once-2') : x)), '--token', token]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /meshward: error: .*already used/);
  });

  it('exits 1 with "certificate expired; bootstrap again" when its certificate expired and it has no token', async () => {
    const out = join(ca.root, 'expired');
    const a = await Authority.open(ca.dir);
    try {
      const issued = await a.issue({ spiffeId: ID, ttlMs: 1000 }, new Date());
      writeSecretFiles(out, [
        { name: 'tls.crt', data: issued.chainPem, mode: 0o644 },
        { name: 'tls.key', data: issued.privateKeyPem, mode: 0o600 },
        { name: 'ca.crt', data: issued.bundlePem, mode: 0o644 },
      ], new Date());
    } finally {
      await a.close();
    }
    await new Promise((r) => setTimeout(r, 1500));
    const r = await runCli(['agent', '--ca', `127.0.0.1:${ca.server.port}`, '--bundle', join(ca.dir, 'bundle.crt'), '--out', out, '--once']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /meshward: error: certificate expired; bootstrap again with a new token/);
  });

  it('gives up with a clear error when its certificate is revoked and it has no token', async () => {
    const out = join(ca.root, 'revoked');
    const first = agent(out, { token: await newToken(ca.dir), ttlMs: 30_000, once: true });
    await first.start();
    const serial = heldSerial(out);
    const revoke = await runCli(['cert', 'revoke', '--ca-dir', ca.dir, '--serial', serial]);
    assert.equal(revoke.code, 0, revoke.stderr);
    // From disk the 30 s certificate is due at once (it is backdated a minute): the agent tries mTLS.
    const a = agent(out, { spiffeId: undefined });
    const errors: Error[] = [];
    a.on('error', (e: Error) => errors.push(e));
    await assert.rejects(a.start(), (e: Error) => /refused to renew certificate/.test(e.message) && /revoked/.test(e.message) && /bootstrap again/.test(e.message));
    await assert.rejects(a.closed, /revoked/);
    assert.equal(errors.length, 1);
    assert.equal(heldSerial(out), serial, 'the folder is left as it was');
  });
});
