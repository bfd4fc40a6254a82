// Hostile input and hostile conditions for the CA command line (issue 7): oversized CSR and PEM files,
// a truncated ca.db reached through the CLI, a full disk while certificates are written, and key files
// with loose permissions (used, with a warning, by the CA and by the sidecar). Each case ends with the CA
// still issuing. Fuzzed CSR/PEM/DER input is in test/pki/fuzz.test.ts; malformed CSRs and identities
// through the CLI in test/cli/refusals-leave-ca-unchanged.test.ts; corrupted, truncated, foreign and
// newer databases at the store level in test/ca/store-keeps-state-safely.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, snapshotDir } from '../support/cli.js';
import { makeScenario, startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import { tempDir } from '../support/temp-dir.js';

const TEN_MB = 10 * 1024 * 1024;

describe('CA: hostile input and conditions', () => {
  let tmp: string;
let removeTmp = (): void => {};
  let ca: string;
  const f = (name: string) => join(tmp, name);

  async function issues(out: string, id = 'spiffe://example.org/ns/shop/sa/still'): Promise<void> {
    const r = await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', id, '--out', out], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(out, 'tls.crt')));
  }

  before(async () => {
    ({ dir: tmp, cleanup: removeTmp } = tempDir());
    ca = f('ca');
    const r = await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => {
    removeTmp();
  });

  it('a 10 MB CSR file (PEM-armoured random bytes): one clear line, exit 1, the CA directory unchanged', async () => {
    const path = f('huge.csr');
    const body = randomBytes((TEN_MB * 3) / 4).toString('base64').replace(/.{64}/g, '$&\n');
    writeFileSync(path, `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`);
    assert.ok(statSync(path).size >= TEN_MB);
    const before = snapshotDir(ca);
    const r = await runCli(['cert', 'sign', '--ca-dir', ca, '--csr', path, '--out', f('huge-out.crt')], { timeoutMs: 60_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: .+\n$/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(snapshotDir(ca), before);
    assert.ok(!existsSync(f('huge-out.crt')));
    await issues(f('after-huge-csr'));
  });

  it('a 10 MB DER CSR of zeros and a 10 MB file of one huge declared length: refused, CA unchanged', async () => {
    const zeros = f('zeros.csr');
    writeFileSync(zeros, Buffer.alloc(TEN_MB));
    const declared = f('declared.csr');
    // SEQUENCE with a 4-byte length claiming ~2 GB, then 10 MB of filler.
    writeFileSync(declared, Buffer.concat([Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(TEN_MB, 0x30)]));
    const before = snapshotDir(ca);
    for (const path of [zeros, declared]) {
      const r = await runCli(['cert', 'sign', '--ca-dir', ca, '--csr', path, '--out', f('never.crt')], { timeoutMs: 60_000 });
      assert.equal(r.code, 1, `${path}: ${r.stderr}`);
      assert.match(r.stderr, /^meshward: error: .+\n$/);
    }
    assert.deepEqual(snapshotDir(ca), before);
    await issues(f('after-der'));
  });

  it('a huge PEM (10 MB CERTIFICATE block) to inspect and to cert revoke --cert: one clear line each, exit 1, CA unchanged', async () => {
    const path = f('huge.pem');
    const body = randomBytes((TEN_MB * 3) / 4).toString('base64').replace(/.{64}/g, '$&\n');
    writeFileSync(path, `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`);
    const before = snapshotDir(ca);
    const inspect = await runCli(['inspect', path], { timeoutMs: 60_000 });
    assert.equal(inspect.code, 1);
    assert.match(inspect.stderr, /^meshward: error: .+\n$/);
    const revoke = await runCli(['cert', 'revoke', '--ca-dir', ca, '--cert', path], { timeoutMs: 60_000 });
    assert.equal(revoke.code, 1);
    assert.match(revoke.stderr, /^meshward: error: .+\n$/);
    assert.deepEqual(snapshotDir(ca), before);
    await issues(f('after-huge-pem'));
  });

  it('a truncated ca.db reached through the CLI: a clear error, nothing overwritten, nothing issued; the CA works again once restored', async () => {
    const copy = f('ca-truncated');
    execFileSync('cp', ['-a', ca, copy]);
    const db = join(copy, 'ca.db');
    const original = readFileSync(db);
    truncateSync(db, Math.floor(original.length / 3));
    const before = snapshotDir(copy);
    const r = await runCli(['cert', 'issue', '--ca-dir', copy, '--spiffe-id', 'spiffe://example.org/ns/a/sa/b', '--out', f('from-truncated')], { timeoutMs: 60_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: .*ca\.db.*\n$/);
    assert.deepEqual(snapshotDir(copy), before, 'the broken database was neither repaired nor replaced');
    assert.ok(!existsSync(join(f('from-truncated'), 'tls.key')));
    writeFileSync(db, original);
    await issues(f('after-restore'));
  });

  describe('a full disk while writing certificates (a 64 KiB tmpfs)', () => {
    let mnt: string;
    let mounted = false;
    before(() => {
      mnt = f('tiny');
      mkdirSync(mnt);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', mnt], { stdio: 'pipe' });
        mounted = true;
      } catch {
        mounted = false;
      }
    });
    after(() => {
      if (mounted) execFileSync('umount', [mnt]);
    });

    /** Fills the file system with one file until ENOSPC; returns its path. */
    function fill(dir: string): string {
      const path = join(dir, 'filler');
      const fd = openSync(path, 'w');
      const chunk = Buffer.alloc(1024, 0x66);
      try {
        for (let i = 0; i < 1024; i++) writeSync(fd, chunk);
        assert.fail('the 64 KiB file system never filled up');
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      } finally {
        closeSync(fd);
      }
      return path;
    }

    it('cert issue and cert renew into a full workload directory: a clear error, the old tls.crt/tls.key/ca.crt intact, no temp files', async (t) => {
      if (!mounted) {
        t.skip('mount -t tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)');
        return;
      }
      const out = join(mnt, 'orders');
      await issues(out, 'spiffe://example.org/ns/shop/sa/orders');
      const old = snapshotDir(out);
      const filler = fill(mnt);
      try {
        const issue = await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/ns/shop/sa/orders', '--out', out], { timeoutMs: 60_000 });
        assert.equal(issue.code, 1);
        assert.match(issue.stderr, /^meshward: error: .*(ENOSPC|no space)/i);
        assert.deepEqual(snapshotDir(out), old, 'the old files are intact and no temp file is left');
        const renew = await runCli(['cert', 'renew', '--ca-dir', ca, '--in', out], { timeoutMs: 60_000 });
        assert.equal(renew.code, 1);
        assert.match(renew.stderr, /^meshward: error: .*(ENOSPC|no space)/i);
        assert.deepEqual(snapshotDir(out), old);
      } finally {
        rmSync(filler);
      }
      // Space again: the same command works and replaces the set.
      const r = await runCli(['cert', 'renew', '--ca-dir', ca, '--in', out], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.notDeepEqual(snapshotDir(out), old);
      assert.deepEqual(readdirSync(out).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    });
  });

  describe('key files with loose permissions', () => {
    it('the CA uses them but warns on stderr, naming each file and its mode', async () => {
      chmodSync(join(ca, 'intermediate.key'), 0o644);
      chmodSync(join(ca, 'root.key'), 0o640);
      try {
        const r = await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/ns/a/sa/loose', '--out', f('loose-out')], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /meshward: warning: private key \S*root\.key has mode 0640/);
        assert.match(r.stderr, /meshward: warning: private key \S*intermediate\.key has mode 0644/);
        assert.match(r.stderr, /chmod 600/);
        assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
      } finally {
        chmodSync(join(ca, 'intermediate.key'), 0o600);
        chmodSync(join(ca, 'root.key'), 0o600);
      }
      const clean = await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/ns/a/sa/tight', '--out', f('tight-out')], { timeoutMs: 60_000 });
      assert.equal(clean.code, 0, clean.stderr);
      assert.doesNotMatch(clean.stderr, /warning/, 'no warning once the keys are 0600');
    });

    it('the sidecar loads a world-readable tls.key, logs a key_file_permissions warning, and serves', async () => {
      const app = await startEchoHttpApp();
      const scenario = makeScenario({ app: app.url, config: { log: { level: 'info', allowed: 'silent' } } });
      chmodSync(join(scenario.identityDir, 'tls.key'), 0o644);
      const sidecar = await startSidecarProcess(scenario.configPath);
      try {
        const line = await sidecar.waitForLog((l) => l.event === 'key_file_permissions', 'the key_file_permissions warning');
        assert.equal(line.level, 40);
        assert.equal(line.mode, '0644');
        assert.match(String(line.path), /tls\.key$/);
        await sidecar.waitUntilReady();
        assert.equal((await sidecar.readyz()).status, 200);
      } finally {
        await sidecar.stop('SIGKILL');
        await app.close();
        scenario.cleanup();
      }
    });
  });
});
