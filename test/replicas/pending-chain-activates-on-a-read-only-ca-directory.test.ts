// A `ca rotate --activate-in` chain starts signing in a `ca serve` whose CA directory is read-only, as in
// deploy/kubernetes/ca (a Secret's copy, PostgreSQL for the state): the server picks the new chain by its
// activation time and writes nothing into D. Tests run as root, which chmod does not stop, so the server runs
// as `nobody` on a directory owned by nobody with every write bit off, and the directory is also compared
// byte for byte after the activation. A CLI command on the writable directory afterwards brings root.* and
// intermediate.* up to date, as the CLI always did.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { MESHWARD_BIN, runCli, snapshotDir } from '../support/cli.js';
import { TD, makeCa, removeDir, tempDir } from '../ca-service/harness.js';
import { usePostgres } from '../support/postgres.js';

/** An unprivileged account to run the server as when the tests run as root (chmod does not bind root). */
function unprivileged(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const row = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === 'nobody');
  assert.ok(row, 'running as root needs a nobody account to run ca serve as');
  return { uid: Number(row[2]), gid: Number(row[3]) };
}

/** chown -R and chmod -R a-w (directories keep r-x, files r--). */
function makeReadOnly(dir: string, owner: { uid: number; gid: number } | undefined): void {
  const walk = (path: string): void => {
    const st = lstatSync(path);
    if (owner) chownSync(path, owner.uid, owner.gid);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    chmodSync(path, st.mode & 0o7777 & ~0o222);
  };
  walk(dir);
}

function restoreWritable(dir: string): void {
  const walk = (path: string): void => {
    const st = lstatSync(path);
    chownSync(path, process.getuid!(), process.getgid!());
    chmodSync(path, (st.mode & 0o7777) | 0o200);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
}

function serialsOfChain(file: string): string[] {
  return decodePem(readFileSync(file)).map((b) => parseCertificate(b.der).serialHex);
}

describe('a pending chain activates in ca serve on a read-only CA directory', () => {
  const pg = usePostgres();
  let root: string;
  let dir: string;
  let dsn: string;
  let serve: ChildProcess | undefined;
  let out = '';
  let newIntermediate = '';
  let activatesAt = 0;

  before(async () => {
    root = tempDir();
    chmodSync(root, 0o755); // mkdtemp makes it 0700: the unprivileged server must reach D inside it
    dsn = await pg.cluster.createDatabase();
    dir = await makeCa(root, dsn);
    const rotated = await runCli(['ca', 'rotate', '--dir', dir, '--store', dsn, '--activate-in', '8s']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const ca = await Authority.open(dir, { store: dsn });
    try {
      const pending = (await ca.authorities()).find((a) => a.status === 'pending' && a.role === 'intermediate');
      assert.ok(pending, 'the rotation left a pending intermediate');
      newIntermediate = pending.serialHex;
      activatesAt = pending.activatesAt.getTime();
    } finally {
      await ca.close();
    }
  });
  after(() => {
    if (serve && serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    restoreWritable(dir);
    removeDir(root);
  });

  it('signs with the new chain after its activation time and leaves every file of D as it was', async () => {
    const account = unprivileged();
    makeReadOnly(dir, account);
    const before = snapshotDir(dir);
    assert.notDeepEqual(serialsOfChain(join(dir, 'intermediate.crt')), [newIntermediate], 'D still names the old chain');

    serve = spawn(process.execPath, [MESHWARD_BIN, 'ca', 'serve', '--dir', dir, '--store', dsn, '--listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'], ...(account ?? {}) });
    serve.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    serve.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    let port = 0;
    for (let i = 0; i < 600 && port === 0; i++) {
      const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(out);
      if (m) port = Number(m[1]);
      else {
        assert.equal(serve.exitCode, null, `ca serve exited: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(port > 0, `ca serve did not listen within 60 s: ${out}`);

    // Past the activation time (plus a margin for clock granularity), a workload bootstraps.
    while (Date.now() < activatesAt + 500) await new Promise((r) => setTimeout(r, 200));
    const id = `spiffe://${TD}/ns/shop/sa/orders`;
    const token = await runCli(['token', 'create', '--ca-dir', dir, '--store', dsn, '--spiffe-id', id]);
    assert.equal(token.code, 0, token.stderr);
    const workload = join(root, 'workload');
    const agent = await runCli(['agent', '--ca', `127.0.0.1:${port}`, '--bundle', join(dir, 'bundle.crt'), '--out', workload,
      '--spiffe-id', id, '--token', token.stdout.trim(), '--once']);
    assert.equal(agent.code, 0, `${agent.stderr}\nca serve: ${out}`);
    assert.equal(serialsOfChain(join(workload, 'tls.crt'))[1], newIntermediate, 'the leaf chains to the newly activated intermediate');

    assert.deepEqual(snapshotDir(dir), before, 'ca serve wrote nothing into D');
    assert.equal(serve.exitCode, null, 'ca serve still runs');
    assert.doesNotMatch(out, /EACCES|EROFS|"level":50/, 'no write error logged');
    const ca = await Authority.open(dir, { store: dsn });
    try {
      const listed = (await ca.authorities()).find((a) => a.serialHex === newIntermediate);
      assert.equal(listed?.status, 'signing', 'the store records the activation');
    } finally {
      await ca.close();
    }
  });

  it('lets the next CLI command on the writable directory point intermediate.* at the signing chain', async () => {
    restoreWritable(dir);
    const issued = await runCli(['cert', 'issue', '--ca-dir', dir, '--store', dsn, '--spiffe-id', `spiffe://${TD}/ns/shop/sa/cli`, '--out', join(root, 'cli')]);
    assert.equal(issued.code, 0, issued.stderr);
    assert.deepEqual(serialsOfChain(join(dir, 'intermediate.crt')), [newIntermediate]);
    assert.equal(serialsOfChain(join(root, 'cli', 'tls.crt'))[1], newIntermediate);
  });
});
