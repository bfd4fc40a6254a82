// A flag that needs a value given without one (`policy check --policy --method GET`, `agent --dns`) is
// reported by yargs' parser as an error object rather than a validation message; it is a usage error like
// any other: exit 2, one line with the flag and where to look, nothing run, no "--debug" hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli.js';

const CASES: [string[], RegExp][] = [
  [['policy', 'check', '--policy', '--spiffe-id', 'spiffe://example.org/a', '--method', 'GET', '--path', '/'], /^meshward: error: Not enough arguments following: policy \(see meshward --help\)\n$/],
  [['policy', 'check', '--policy', 'p.yaml', '--spiffe-id', 'spiffe://example.org/a', '--method', 'GET', '--path'], /^meshward: error: Not enough arguments following: path /],
  [['agent', '--ca', '127.0.0.1:1', '--bundle', 'b.crt', '--out', 'never', '--dns'], /^meshward: error: Not enough arguments following: dns /],
];

for (const [args, expected] of CASES) {
  test(`meshward ${args.slice(0, 2).join(' ')} … ${args.at(-1)} without a value: exit 2`, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /--debug/);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  });
}
