// The Kubernetes Secret layout writer: `..data` swapped by one rename, stable symlinks, old generations
// removed, and a reader on another thread never sees a certificate beside a key of another generation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { currentGeneration, generationName, readSecretFiles, writeSecretFiles } from '../../src/agent/secret-dir.js';
import { backoffDelay, renewalTime } from '../../src/agent/schedule.js';
import { removeDir, tempDir } from '../ca-service/harness.js';

const files = (n: number) => [
  { name: 'tls.crt', data: `cert ${n}\n`, mode: 0o644 },
  { name: 'tls.key', data: `key ${n}\n`, mode: 0o600 },
  { name: 'ca.crt', data: `bundle ${n}\n`, mode: 0o644 },
];

describe('Kubernetes Secret layout', () => {
  it('names generations like the kubelet', () => {
    assert.equal(generationName(new Date(Date.UTC(2026, 10, 27, 12, 0, 0, 123)), 456789), '..2026_11_27_12_00_00.123456789');
  });

  it('writes a generation, points ..data at it and the names at ..data', () => {
    const dir = tempDir();
    try {
      const gen = writeSecretFiles(dir, files(1), new Date());
      assert.equal(readlinkSync(join(dir, '..data')), gen);
      for (const name of ['tls.crt', 'tls.key', 'ca.crt']) {
        assert.ok(lstatSync(join(dir, name)).isSymbolicLink());
        assert.equal(readlinkSync(join(dir, name)), `..data/${name}`);
      }
      assert.equal(readFileSync(join(dir, 'tls.crt'), 'utf8'), 'cert 1\n');
      assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
      assert.equal(currentGeneration(dir), gen);
    } finally {
      removeDir(dir);
    }
  });

  it('replaces plain files left by another writer and keeps at most the current and previous generation', () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'tls.crt'), 'old plain file');
      let last = '';
      for (let i = 0; i < 5; i++) last = writeSecretFiles(dir, files(i), new Date());
      const generations = readdirSync(dir).filter((n) => n.startsWith('..2'));
      assert.ok(generations.length <= 2, generations.join(', '));
      assert.ok(generations.includes(last));
      assert.equal(readFileSync(join(dir, 'tls.crt'), 'utf8'), 'cert 4\n');
      assert.deepEqual([...readSecretFiles(dir, ['tls.crt', 'tls.key'])!.values()].map(String), ['cert 4\n', 'key 4\n']);
      assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp') || n === '..data_tmp').length, 0);
    } finally {
      removeDir(dir);
    }
  });

  it('a concurrent reader that resolves ..data once always reads a matching pair', async () => {
    const dir = tempDir();
    try {
      writeSecretFiles(dir, files(0), new Date());
      const reader = new Worker(`
        const { workerData, parentPort } = require('node:worker_threads');
        const fs = require('node:fs');
        const path = require('node:path');
        let checks = 0, mismatches = 0, retries = 0;
        const end = Date.now() + workerData.ms;
        while (Date.now() < end) {
          try {
            const gen = path.join(workerData.dir, fs.readlinkSync(path.join(workerData.dir, '..data')));
            const cert = fs.readFileSync(path.join(gen, 'tls.crt'), 'utf8').split(' ')[1];
            const key = fs.readFileSync(path.join(gen, 'tls.key'), 'utf8').split(' ')[1];
            checks++;
            if (cert !== key) mismatches++;
          } catch (e) { retries++; }
        }
        parentPort.postMessage({ checks, mismatches, retries });
      `, { eval: true, workerData: { dir, ms: 1500 } });
      const result = new Promise<{ checks: number; mismatches: number }>((resolve, reject) => {
        reader.once('message', resolve);
        reader.once('error', reject);
      });
      let n = 1;
      let done = false;
      void result.then(() => { done = true; });
      while (!done && n < 100_000) {
        writeSecretFiles(dir, files(n++), new Date());
        await new Promise((r) => setImmediate(r));
      }
      const { checks, mismatches } = await result;
      assert.ok(n > 10, `the writer made ${n} generations`);
      assert.ok(checks > 0);
      assert.equal(mismatches, 0);
    } finally {
      removeDir(dir);
    }
  });
});

describe('renewal schedule', () => {
  it('renews at 2/3 of the lifetime, earlier by at most 10% jitter', () => {
    const from = new Date(0);
    const to = new Date(90_000);
    assert.equal(renewalTime(from, to, 0).getTime(), 60_000);
    assert.equal(renewalTime(from, to, 0.999999).getTime() >= 51_000, true);
    assert.equal(renewalTime(from, to, 0.999999).getTime() <= 60_000, true);
  });

  it('backs off from 1 s doubling to at most 1 min', () => {
    assert.equal(backoffDelay(1, 1), 1000);
    assert.equal(backoffDelay(1, 0), 500);
    assert.equal(backoffDelay(2, 1), 2000);
    assert.equal(backoffDelay(7, 1), 60_000);
    assert.equal(backoffDelay(50, 1), 60_000);
    assert.equal(backoffDelay(50, 0), 30_000);
  });
});
