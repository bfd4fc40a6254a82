// Every malformed sidecar config is refused at start with exit status 2 and ONE line on stderr that
// names the file and the field, before anything listens.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSidecarToExit, writeSidecarConfig } from '../support/sidecar.js';
import { tempDir } from '../support/temp-dir.js';

let tmp: string;
let removeTmp = (): void => {};

before(() => {
  ({ dir: tmp, cleanup: removeTmp } = tempDir());
  writeFileSync(join(tmp, 'policy.yaml'), 'grants: []\nroutes: []\n');
});

after(() => removeTmp());

const good = {
  identity: { dir: './identity' },
  inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:8080' },
  policy: './policy.yaml',
  admin: { listen: '127.0.0.1:0' },
};

// [name, config (object → YAML, string → raw text), expected stderr pattern]
const cases: [string, object | string, RegExp][] = [
  ['an app with an unknown scheme', { ...good, inbound: { ...good.inbound, app: 'https://127.0.0.1:8080' } }, /inbound\.app: must be http:\/\/, h2c:\/\/ or tcp:\/\/ HOST:PORT/],
  ['an app without a port', { ...good, inbound: { ...good.inbound, app: 'http://127.0.0.1' } }, /inbound\.app: must be http:\/\/, h2c:\/\/ or tcp:\/\//],
  ['a listen address without a port', { ...good, inbound: { ...good.inbound, listen: '127.0.0.1' } }, /inbound\.listen: must be HOST:PORT/],
  ['a port out of range', { ...good, admin: { listen: '127.0.0.1:70000' } }, /admin\.listen: must be HOST:PORT/],
  ['a typo in a key', { ...good, inbound: { ...good.inbound, lisen: '127.0.0.1:1' } }, /inbound\.lisen: unknown field/],
  ['an unknown top-level key', { ...good, identty: {} }, /identty: unknown field/],
  ['no identity', { inbound: good.inbound, policy: good.policy }, /identity: is required/],
  ['no identity.dir', { ...good, identity: {} }, /identity\.dir: is required/],
  ['inbound without a policy', { identity: good.identity, inbound: good.inbound }, /policy: is required with inbound/],
  ['neither inbound nor outbound', { identity: good.identity }, /configure inbound, outbound or both/],
  ['a bad duration', { ...good, limits: { drainTimeout: 'soon' } }, /limits\.drainTimeout: .*duration/],
  ['a maxConnectionAge that is not a duration', { ...good, limits: { maxConnectionAge: 'forever' } }, /limits\.maxConnectionAge: .*duration/],
  ['a negative maxConnections', { ...good, limits: { maxConnections: -1 } }, /limits\.maxConnections: must be a positive whole number/],
  ['an unknown log level', { ...good, log: { level: 'loud' } }, /log\.level: must be one of/],
  ['an unknown allowed-request log level', { ...good, log: { allowed: 'warn' } }, /log\.allowed: must be one of info, debug, silent/],
  ['an outbound identity that is not a SPIFFE ID', { ...good, outbound: [{ listen: '127.0.0.1:0', upstream: 'orders:8443', identity: 'orders' }] }, /outbound\[0\]\.identity: /],
  ['an outbound connectTimeout that is not a duration', { ...good, outbound: [{ listen: '127.0.0.1:0', upstream: '127.0.0.1:1', identity: 'spiffe://example.org/x', connectTimeout: 'quick' }] }, /outbound\[0\]\.connectTimeout: .*duration/],
  ['an outbound entry without upstream', { ...good, outbound: [{ listen: '127.0.0.1:0', identity: 'spiffe://example.org/x' }] }, /outbound\[0\]\.upstream: is required/],
  ['a missing policy file', { ...good, policy: './nope.yaml' }, /nope\.yaml: cannot read the policy file \(ENOENT\)/],
  ['an invalid inline policy', { ...good, policy: { grantz: [] } }, /policy.*grantz/],
  ['not YAML', 'identity: [\n', /not valid YAML/],
  ['a YAML list instead of a mapping', '- a\n- b\n', /must be a YAML mapping/],
];

for (const [name, config, expected] of cases) {
  test(`refused: ${name}`, async () => {
    const path = typeof config === 'string' ? join(tmp, 'raw.yaml') : writeSidecarConfig(tmp, config);
    if (typeof config === 'string') writeFileSync(path, config);
    const r = await runSidecarToExit(path);
    assert.equal(r.code, 2, `exit status for ${name}; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
    assert.match(lines[0]!, /^meshward: error: /);
    assert.match(lines[0]!, expected);
    assert.ok(lines[0]!.includes(typeof config === 'string' ? 'raw.yaml' : 'sidecar.yaml') || /nope\.yaml/.test(lines[0]!), 'names the file');
  });
}

test('refused: a config file that does not exist', async () => {
  const r = await runSidecarToExit(join(tmp, 'missing.yaml'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing\.yaml: cannot read the config file \(ENOENT\)/);
});
