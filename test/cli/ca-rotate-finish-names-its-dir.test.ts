// `ca rotate --finish` names the CA directory it acted on (issue 14, item 9): an operator with several CAs
// must see which one a refusal or a retirement is about, and the command it suggests must run as printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli.js';
import { useCliCa } from '../support/ca-cli.js';

const t = useCliCa({ name: 'ca-west' });

test('nothing to finish: the refusal names the directory', async () => {
  const r = await runCli(['ca', 'rotate', '--dir', t.ca, '--finish']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^meshward: error: nothing to finish in (\S+): only the current chain/);
  assert.ok(r.stderr.includes(`nothing to finish in ${t.ca}:`), r.stderr);
});

test('a pending chain: the suggested command carries --dir', async () => {
  assert.equal((await runCli(['ca', 'rotate', '--dir', t.ca, '--activate-in', '1h'])).code, 0);
  const r = await runCli(['ca', 'rotate', '--dir', t.ca, '--finish']);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`run meshward ca rotate --dir ${t.ca} --finish then`), r.stderr);
});
