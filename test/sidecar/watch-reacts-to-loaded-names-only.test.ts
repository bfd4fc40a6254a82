// watchDirectory (src/sidecar/watch.ts) on a real folder: writes to a name it does not load never call
// back, a write to a loaded name or a Kubernetes `..data` swap does, and a burst that never pauses is
// cut at the maximum wait instead of postponing the call for as long as it lasts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { watchDirectory } from '../../src/sidecar/watch.js';
import { tempDir } from '../support/temp-dir.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    if (check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('other names are ignored; a loaded name and a ..data swap are seen', async () => {
  const { dir, cleanup: removeDir } = tempDir('meshward-watch-');
  writeFileSync(join(dir, 'policy.yaml'), 'a');
  let calls = 0;
  const w = watchDirectory(dir, ['policy.yaml'], () => calls++, { debounceMs: 50, maxWaitMs: 200, recheckIntervalMs: 600_000 });
  try {
    for (let i = 0; i < 20; i++) {
      appendFileSync(join(dir, 'sidecar.log'), `line ${i}\n`);
      writeFileSync(join(dir, `.policy.yaml.swp${i % 2}`), 'x');
      await sleep(25);
    }
    await sleep(500);
    assert.equal(calls, 0, 'writes to names the sidecar does not load');

    writeFileSync(join(dir, 'policy.yaml'), 'b');
    await until('the call for policy.yaml', () => calls === 1);

    writeFileSync(join(dir, 'target'), 'c');
    symlinkSync('target', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until('the call for the ..data swap', () => calls === 2);
  } finally {
    await w.close();
    removeDir();
  }
});

test('a loaded name written every 20 ms still calls back within the maximum wait, repeatedly', async () => {
  const { dir, cleanup: removeDir } = tempDir('meshward-watch-');
  let calls = 0;
  const w = watchDirectory(dir, ['policy.yaml'], () => calls++, { debounceMs: 200, maxWaitMs: 300, recheckIntervalMs: 600_000 });
  let n = 0;
  const writer = setInterval(() => writeFileSync(join(dir, 'policy.yaml'), String(n++)), 20);
  try {
    // Without a maximum wait the 200 ms debounce would never elapse while the writes go on.
    await until('two calls during the unbroken burst', () => calls >= 2);
  } finally {
    clearInterval(writer);
    await w.close();
    removeDir();
  }
});
