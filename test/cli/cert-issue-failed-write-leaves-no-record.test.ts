// `cert issue` whose files cannot be written (issue 14, item 9): the certificate it signed is not kept in
// the CA's store (no record of a certificate nobody holds, which `ca list` would show and a CRL would
// have to carry), the error is one line, and the next issuance works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { useCliCa } from '../support/ca-cli.js';

const t = useCliCa();

const listed = async (): Promise<string> => {
  const r = await runCli(['ca', 'list', '--dir', t.ca]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

const unwritable: [string, () => string][] = [
  ['--out inside a regular file (the folder cannot be made)', () => {
    writeFileSync(join(t.dir, 'a-file'), 'x');
    return join(t.dir, 'a-file', 'workload');
  }],
  ['tls.crt is a directory (the rename over it fails)', () => {
    const out = join(t.dir, 'crt-is-a-dir');
    mkdirSync(join(out, 'tls.crt'), { recursive: true });
    writeFileSync(join(out, 'tls.crt', 'keep'), 'x');
    return out;
  }],
];

for (const [what, prepare] of unwritable) {
  test(`${what}: exit 1, one line, no certificate recorded`, async () => {
    const out = prepare();
    const id = `spiffe://example.org/ns/shop/sa/${what.length}`;
    const r = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', id, '--out', out]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^meshward: error: /);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '', 'no "issued" line');
    assert.ok(!(await listed()).includes(id), 'the store keeps no record of the certificate');
  });
}

test('after the failures, an issuance to a writable folder is recorded', async () => {
  const id = 'spiffe://example.org/ns/shop/sa/works';
  const r = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', id, '--out', join(t.dir, 'ok')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await listed()).includes(id));
});
