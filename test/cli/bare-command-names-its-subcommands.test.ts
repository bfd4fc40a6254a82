// `meshward ca` (or cert, token, apikey, policy, webhook) with no subcommand is a usage error (exit 2) whose one line
// names the subcommands there are, instead of yargs' "Not enough non-option arguments".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli as meshward } from '../support/cli.js';

const CASES: Array<[string, RegExp]> = [
  ['ca', /name a ca command: init, crl, list, rotate, serve, migrate or import/],
  ['cert', /name a cert command: issue, sign, renew or revoke/],
  ['token', /name a token command: create/],
  ['apikey', /name an apikey command: create, list, revoke, rotate, scan/],
  ['policy', /name a policy command: check/],
  ['webhook', /name a webhook command: serve/],
];

for (const [command, expected] of CASES) {
  test(`meshward ${command} alone exits 2 naming its subcommands`, async () => {
    const r = await meshward([command]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /non-option arguments/);
    assert.equal(r.stdout, '');
  });
}
