// The allowed-request line is built by hand (request-log.ts) but must be the line pino would write for
// the same fields: same keys in the same order, same level number, bindings, escaping and msg, so log
// pipelines see one format. Both are written through one createLogger() buffer to a file and compared
// byte for byte (the time aside), for plain and hostile values alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createLogger, flushLogs } from '../../../src/sidecar/observe/log.js';
import { requestLogFor } from '../../../src/sidecar/observe/request-log.js';
import { tempDir } from '../../support/temp-dir.js';

const CASES: { method: string; path: string; rule: string; status: number; outcome: string; ms: number; principal?: string; keyId?: string }[] = [
  { method: 'GET', path: '/orders/1', rule: 'GET /orders/**', status: 200, outcome: 'allow', ms: 0.4 },
  { method: 'POST', path: '/orders?x=1', rule: 'orders', status: 502, outcome: 'upstream_error', ms: 12 },
  { method: 'GET', path: '/a"b\\c\n\r\t\u0000\u001f\u007f', rule: 'r"1', status: 200, outcome: 'allow', ms: 1234.5 },
  { method: 'PUT', path: '/café/\u00ff\u2028\u2029/💥', rule: 'règle', status: 201, outcome: 'allow', ms: 0 },
  { method: 'M"X', path: '/"},"level":60,"forged":{"', rule: '\\', status: 204, outcome: 'allow', ms: 3.1, principal: 'spiffe://x/"a" user:ü', keyId: 'k"1\\' },
  { method: 'GET', path: '/p', rule: 'req', status: 200, outcome: 'allow', ms: 2, principal: 'apikey:ops' },
];

for (const level of ['info', 'debug'] as const) {
  test(`allowed-request lines at ${level} are byte for byte pino's (time aside), hostile values included`, async () => {
    const dir = tempDir();
    try {
      const file = dir.path('log.jsonl');
      const fd = fs.openSync(file, 'w');
      const root = createLogger('debug', fd).child({ worker: 2, pid: 77 });
      const rl = requestLogFor(root, level);
      assert.ok(rl !== undefined, 'a createLogger logger has a request log');
      const identity = 'spiffe://example.org/ns/"shop"/sa/ü';
      const remote = '127.0.0.1:5555';
      const part = rl.connectionPart(identity, remote);
      const child = root.child({ identity, remote });
      for (const c of CASES) {
        const fields = { event: 'request', method: c.method, path: c.path, rule: c.rule, status: c.status, outcome: c.outcome, ms: c.ms };
        if (c.principal !== undefined) child[level]({ ...fields, principal: c.principal, ...(c.keyId !== undefined ? { keyId: c.keyId } : {}) }, 'request');
        else child[level](fields, 'request');
        rl.write(part, c.method, c.path, c.rule, c.status, c.outcome, c.ms, c.principal, c.keyId);
      }
      await flushLogs(root);
      fs.closeSync(fd);
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
      assert.equal(lines.length, CASES.length * 2);
      const untimed = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
      for (let i = 0; i < CASES.length; i++) {
        assert.equal(untimed(lines[2 * i + 1]!), untimed(lines[2 * i]!), `case ${i}`);
        const parsed = JSON.parse(lines[2 * i + 1]!) as Record<string, unknown>;
        assert.equal(parsed.path, CASES[i]!.path, 'the path survives the round trip');
        assert.equal(parsed.forged, undefined);
        assert.equal(parsed.level, level === 'info' ? 30 : 20);
        assert.match(String(parsed.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
    } finally {
      dir.cleanup();
    }
  });
}
