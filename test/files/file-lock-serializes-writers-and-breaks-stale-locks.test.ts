// The lock file behind every key-file change: eight processes doing read-increment-write with a pause inside
// the lock lose no update; a lock left by a dead process (or older than the stale limit, or half-written) is
// broken; a live holder is waited for and, past the timeout, named in a clear error; the lock is removed
// after use even when the locked work throws.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { withFileLock } from '../../src/file-lock.js';
import { REPO_ROOT } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'meshward-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const LOCK_MODULE = join(REPO_ROOT, 'dist', 'src', 'file-lock.js');

/** A process that adds 1 to the number in `file`, `times` times, each under the lock with a pause inside. */
function incrementer(file: string, times: number): Promise<number> {
  const script = `
    import { readFileSync, writeFileSync } from 'node:fs';
    import { withFileLock } from ${JSON.stringify(LOCK_MODULE)};
    const file = ${JSON.stringify(file)};
    for (let i = 0; i < ${times}; i++) {
      await withFileLock(file, async () => {
        const n = Number(readFileSync(file, 'utf8'));
        await new Promise((r) => setTimeout(r, 3));
        writeFileSync(file, String(n + 1));
      }, { timeoutMs: 120000 });
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? -1));
  });
}

describe('file lock', () => {
  it('eight processes incrementing one file under the lock lose no update', async () => {
    const file = join(dir, 'counter');
    writeFileSync(file, '0');
    const codes = await Promise.all(Array.from({ length: 8 }, () => incrementer(file, 10)));
    assert.deepEqual(codes, Array(8).fill(0));
    assert.equal(readFileSync(file, 'utf8'), '80');
    assert.equal(existsSync(`${file}.lock`), false);
  });

  it('breaks a lock whose process is gone', async () => {
    const file = join(dir, 'dead');
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: 2 ** 22 + 7, host: hostname(), nonce: 'x', since: 0 }));
    assert.equal(await withFileLock(file, () => 'ran', { timeoutMs: 5000 }), 'ran');
    assert.equal(existsSync(`${file}.lock`), false);
  });

  it('breaks a lock older than the stale limit, even of a live process, and a half-written one after 5 s', async () => {
    const file = join(dir, 'old');
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'x', since: 0 }));
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(`${file}.lock`, old, old);
    assert.equal(await withFileLock(file, () => 'ran', { timeoutMs: 5000 }), 'ran');
    writeFileSync(`${file}.lock`, '');
    utimesSync(`${file}.lock`, (Date.now() - 6000) / 1000, (Date.now() - 6000) / 1000);
    assert.equal(await withFileLock(file, () => 'ran again', { timeoutMs: 5000 }), 'ran again');
  });

  it('waits for a live holder and, past the timeout, names it and leaves its lock alone', async () => {
    const file = join(dir, 'live');
    const holder = JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'held', since: Date.parse('2025-06-01T00:00:00Z') });
    writeFileSync(`${file}.lock`, holder);
    await assert.rejects(withFileLock(file, () => 'never', { timeoutMs: 300 }), (err: unknown) => {
      assert.ok(err instanceof MeshwardError && err.code === 'unavailable');
      assert.match(err.message, new RegExp(`is locked by process ${process.pid} on .* since 2025-06-01T00:00:00.000Z: if no meshward is writing it, remove .*live\\.lock`));
      return true;
    });
    assert.equal(readFileSync(`${file}.lock`, 'utf8'), holder);
  });

  it('removes its lock when the locked work throws', async () => {
    const file = join(dir, 'throws');
    await assert.rejects(withFileLock(file, () => { throw new Error('boom'); }), /boom/);
    assert.equal(existsSync(`${file}.lock`), false);
  });
});
