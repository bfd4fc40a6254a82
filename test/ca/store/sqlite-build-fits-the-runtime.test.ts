// The SQLite addon build matches the Node runtime (src/ca/store/sqlite-binding.ts): better-sqlite3 12 on
// Node 20, 13 (node-addon-api) from Node 22 on. The hostile shape is the one that aborted processes on
// Node 24 with 12.x (SIGABRT, "Assertion failed: (env) != nullptr", as prepared statements were finalised by
// the garbage collector): a child process runs CAs on SQLite through 60 concurrent issuances, closes them and
// forces collections; it must print `done` and exit 0 (`make test-node24` runs this file on Node 24).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SQLITE_PACKAGE } from '../../../src/ca/store/sqlite-binding.js';
import { tempDir } from '../fixtures.js';

const major = Number(process.versions.node.split('.')[0]);

it('loads the better-sqlite3 line made for this Node major', () => {
  const expected = major >= 22 ? { name: 'better-sqlite3-napi', line: '13.' } : { name: 'better-sqlite3', line: '12.' };
  assert.equal(SQLITE_PACKAGE, expected.name);
  const version = (createRequire(import.meta.url)(`${SQLITE_PACKAGE}/package.json`) as { version: string }).version;
  assert.ok(version.startsWith(expected.line), `${SQLITE_PACKAGE} is ${version}, expected ${expected.line}x on Node ${process.version}`);
});

it('keeps a CA on SQLite alive through concurrent issuances, closes and the collector', () => {
  const t = tempDir();
  try {
    const url = (path: string) => JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../../src', path)).href);
    // On Node 24.21 with better-sqlite3 12 this aborted during the first or second round, every time.
    const script = `
      const { Authority } = await import(${url('ca/authority.js')});
      const { createCsr } = await import(${url('pki/csr.js')});
      const { generateKeyPair } = await import(${url('pki/keys.js')});
      const id = 'spiffe://example.org/ns/load/sa/worker';
      for (let round = 0; round < 3; round++) {
        const ca = await Authority.init(${JSON.stringify(t.dir)} + '/ca' + round, { trustDomain: 'example.org' }, new Date());
        const csrs = Array.from({ length: 60 }, () => createCsr({ subject: {}, uris: [id] }, generateKeyPair('ec-p256')));
        await Promise.all(csrs.map((csr) => ca.signCsr(csr, {}, new Date())));
        await ca.close();
        globalThis.gc();
      }
      console.log('done');
    `;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 180_000 });
    assert.equal(run.signal, null, `the process died of ${run.signal}: ${run.stderr}`);
    assert.equal(run.stdout.trim(), 'done', run.stderr);
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /Assertion failed|Segmentation/);
  } finally {
    t.cleanup();
  }
});
