// `outbound` `connectTimeout: 0` (or idleTimeout) used to mean the default without a word. Zero has no
// meaning a user could expect (Envoy refuses a zero connect_timeout; "no limit" would let a blackholed
// upstream hold the app's request forever), so it is refused at start: exit 2, one line naming the field
// and saying to leave it out for the default. Positive values and an absent field still start.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSidecarConfigText } from '../../src/sidecar/config.js';
import { runSidecarToExit, writeSidecarConfig } from '../support/sidecar.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'meshward-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const outbound = (extra: Record<string, unknown>) => ({
  identity: { dir: './identity' },
  outbound: [{ listen: '127.0.0.1:0', upstream: '127.0.0.1:1', identity: 'spiffe://example.org/ns/shop/sa/orders', ...extra }],
});

const refusals: [string, Record<string, unknown>, RegExp][] = [
  ['connectTimeout: 0s', { connectTimeout: '0s' }, /outbound\[0\]\.connectTimeout: must be more than 0 \(there is no "no limit": .*\); leave it out for the default 5s$/],
  ['connectTimeout: 0 (a bare number)', { connectTimeout: 0 }, /outbound\[0\]\.connectTimeout: must be more than 0 .*default 5s$/],
  ['connectTimeout: 0ms', { connectTimeout: '0ms' }, /outbound\[0\]\.connectTimeout: must be more than 0/],
  ['connectTimeout: -1 (negative)', { connectTimeout: -1 }, /outbound\[0\]\.connectTimeout: must be a duration/],
  ['idleTimeout: 0s', { idleTimeout: '0s' }, /outbound\[0\]\.idleTimeout: must be more than 0 .*default 30s$/],
];

for (const [what, extra, expected] of refusals) {
  test(`refused at start: ${what}`, async () => {
    const r = await runSidecarToExit(writeSidecarConfig(tmp, outbound(extra)));
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^meshward: error: .*sidecar\.yaml: /);
    assert.match(lines[0]!, expected);
  });
}

test('a positive timeout is used as given, and an absent one is the default', () => {
  const load = (path: string) => parseSidecarConfigText(readFileSync(path, 'utf8'), path);
  const given = load(writeSidecarConfig(tmp, outbound({ connectTimeout: '250ms', idleTimeout: 2 }), 'given.yaml'));
  assert.equal(given.outbound[0]!.connectTimeoutMs, 250);
  assert.equal(given.outbound[0]!.idleTimeoutMs, 2000);
  const absent = load(writeSidecarConfig(tmp, outbound({}), 'absent.yaml'));
  assert.equal(absent.outbound[0]!.connectTimeoutMs, 5000);
  assert.equal(absent.outbound[0]!.idleTimeoutMs, 30_000);
});
