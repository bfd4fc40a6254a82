// `meshward apikey scan` as a pre-commit hook: on a tree holding real keys (source, .env, nested folders, a
// key twice on one line), look-alikes whose checksum fails, keys inside node_modules/ and .git/ and inside
// a binary file, it prints file:line for exactly the real keys in the project's text files and exits 1; on a
// clean tree it prints nothing and exits 0; a path that does not exist is an error.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateApiKey } from '../../src/auth/api-key.js';
import { runCli } from '../support/cli.js';

const root = mkdtempSync(join(tmpdir(), 'meshward-scan-'));
after(() => rmSync(root, { recursive: true, force: true }));

const k1 = generateApiKey();
const k2 = generateApiKey();
const k3 = generateApiKey();
/** The key with its last checksum character changed: looks like a key, is not one. */
const lookAlike = (k: string) => k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A');

function write(path: string, data: string | Buffer): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), data);
}

describe('apikey scan', () => {
  it('lists file:line of every real key in text files, skipping node_modules, .git, binaries and look-alikes; exit 1', async () => {
    write('src/client.ts', `// client\nconst a = 1;\nconst key = "${k1.key}";\n`);
    write('.env', `API_KEY=${k2.key}\nOTHER=${lookAlike(k3.key)}\n`);
    write('deep/er/notes.md', `line one\n\n\nboth: ${k3.key} and ${k1.key}\n`);
    write('docs/example.md', `Example: mwk_XXXXXXXXXXXX_${'x'.repeat(38)}\n${lookAlike(k1.key)}\n`);
    write('node_modules/pkg/index.js', `module.exports = "${k1.key}";\n`);
    write('.git/config', `token = ${k2.key}\n`);
    write('assets/blob.bin', Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(`\n${k1.key}\n`)]));
    symlinkSync(join(root, 'src'), join(root, 'loop-link'));
    const r = await runCli(['apikey', 'scan', root]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), [
      `${join(root, '.env')}:1: API key ${k2.id}`,
      `${join(root, 'deep/er/notes.md')}:4: API key ${k1.id}`,
      `${join(root, 'deep/er/notes.md')}:4: API key ${k3.id}`,
      `${join(root, 'src/client.ts')}:3: API key ${k1.id}`,
    ].sort());
    assert.match(r.stderr, /found 4 API keys/);
    assert.ok(!r.stdout.includes(k1.secret), 'scan printed a secret');
  });

  it('files named one by one (as a pre-commit hook passes them) are scanned the same', async () => {
    const r = await runCli(['apikey', 'scan', join(root, 'src/client.ts'), join(root, 'docs/example.md')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `${join(root, 'src/client.ts')}:3: API key ${k1.id}\n`);
  });

  it('a clean tree: nothing printed, exit 0', async () => {
    const clean = join(root, 'docs');
    const r = await runCli(['apikey', 'scan', clean]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  it('a path that does not exist is an error (exit 1, one line)', async () => {
    const r = await runCli(['apikey', 'scan', join(root, 'nope')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: .*nope: no such file or directory\n$/);
  });
});
