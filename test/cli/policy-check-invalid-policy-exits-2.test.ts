// `meshward policy check` with a policy that does not load exits 2, like the sidecar refusing the same
// policy at start: exit 1 is kept for "the request would be refused" (DENY), so a script can tell a broken
// policy from a denial. Each refusal is one line naming the file, and prints nothing on stdout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';

const CALLER = 'spiffe://example.org/ns/shop/sa/frontend';

describe('policy check with a policy that does not load', () => {
  let dir = '';
  const file = (name: string) => join(dir, name);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshward-'));
    writeFileSync(file('good.yaml'), `grants:\n  - identities: ["${CALLER}"]\n    scopes: [orders:read]\nroutes:\n  - match: {path: /orders/**}\n    scope: orders:read\n`);
    writeFileSync(file('bad-method.yaml'), 'routes:\n  - match: {methods: [GTE], path: /x}\n    public: true\n');
    writeFileSync(file('unknown-field.yaml'), 'routes:\n  - match: {path: /x}\n    pubic: true\n');
    writeFileSync(file('not-yaml.yaml'), 'routes: [\n');
    writeFileSync(file('duplicate-key.yaml'), 'routes: []\nroutes: []\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const check = (policy: string, path = '/orders/1') => runCli(['policy', 'check', '--policy', policy, '--spiffe-id', CALLER, '--method', 'GET', '--path', path]);

  const refusals: [string, string, RegExp][] = [
    ['an unknown HTTP method', 'bad-method.yaml', /bad-method\.yaml: routes\[0\]\.match\.methods\[0\]: "GTE" is not an HTTP method$/],
    ['a misspelled field', 'unknown-field.yaml', /unknown-field\.yaml: routes\[0\]\.pubic: unknown field/],
    ['text that is not YAML', 'not-yaml.yaml', /not-yaml\.yaml:2: not valid YAML/],
    ['a key given twice', 'duplicate-key.yaml', /duplicate-key\.yaml:2: not valid YAML: Map keys must be unique/],
    ['a file that does not exist', 'missing.yaml', /missing\.yaml: cannot read the policy file \(ENOENT\)/],
  ];
  for (const [what, name, message] of refusals) {
    it(`${what}: exit 2, one line naming the file`, async () => {
      const r = await check(file(name));
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.split('\n').length, 2, r.stderr);
      assert.match(r.stderr.trim(), /^meshward: error: /);
      assert.match(r.stderr.trim(), message);
    });
  }

  it('a valid policy still answers DENY with exit 1 and ALLOW with exit 0', async () => {
    const denied = await check(file('good.yaml'), '/admin');
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stdout, /^DENY \(40\d\)/);
    const allowed = await check(file('good.yaml'));
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /^ALLOW /);
  });
});
