// `meshward inspect` without its file (and `meshward apikey scan` without a path) is a usage error, exit 2,
// whose one line says what to name and how, instead of yargs' "Not enough non-option arguments: got 0".
// Flags given without the positional change nothing: the command still refuses before it runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../support/cli.js';

const CASES: Array<[string[], RegExp]> = [
  [['inspect'], /^meshward: error: name the certificate, chain, CSR or CRL file to describe: meshward inspect FILE \(see meshward inspect --help\)\n$/],
  [['inspect', '--json'], /^meshward: error: name the certificate, chain, CSR or CRL file to describe: meshward inspect FILE /],
  [['apikey', 'scan'], /^meshward: error: name the files or directories to scan: meshward apikey scan PATH… \(see meshward apikey scan --help\)\n$/],
];

for (const [args, expected] of CASES) {
  test(`meshward ${args.join(' ')} exits 2 with one line naming what is missing`, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, expected);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /non-option arguments/);
  });
}

test('meshward inspect with a file that does not exist is still a refusal naming it (exit 1)', async () => {
  const r = await runCli(['inspect', '/nonexistent/meshward-test.pem']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^meshward: error: file \/nonexistent\/meshward-test\.pem does not exist\n$/);
});
