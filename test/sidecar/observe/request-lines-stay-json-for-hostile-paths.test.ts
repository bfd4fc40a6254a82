// The allowed-request line is built by hand (src/sidecar/observe/request-log.ts), not by pino: a path
// the client chooses — quotes, backslashes, control characters, bytes above 0x7f, JSON of its own —
// must never break a line out of its JSON or forge a field. Every line the sidecar writes parses, and
// the line of each request that went through names exactly the target the app received.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { echoAppScenarios } from '../../support/echo-app-scenarios.js';
import { FRONTEND_ID, clientTlsOptions, exchangeHead, startSidecarProcess } from '../../support/sidecar.js';

const apps = echoAppScenarios();

/** Request targets as raw bytes (latin1: one character per byte on the wire). */
const HOSTILE_TARGETS = [
  // Through to the app (and into a request line):
  '/orders/a"b',
  '/orders/"quoted","level":60,"forged":true,"x":"',
  '/orders/x?q=back\\slash\\"',
  '/orders/x?q=</script>"\'\\u0000\\n',
  '/orders/{"forged":true}',
  // Refused by the policy's path check (a warn line from pino, with the path):
  '/orders/back\\slash',
  '/orders/%22%5C%00%0a',
  // Refused by the HTTP parser (a warn line without the target):
  '/orders/caf\xe9',
  '/orders/\xe2\x80\xa8line-separator',
  '/orders/ctl\x01\x1f\x7f',
];

/** One request on its own TLS connection; the status, or 0 when the connection ended without an answer. */
async function rawStatus(port: number, pki: Parameters<typeof clientTlsOptions>[0], leaf: Parameters<typeof clientTlsOptions>[1], target: string): Promise<number> {
  const got = await exchangeHead(clientTlsOptions(pki, leaf, port), Buffer.from(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: "\\\r\nConnection: close\r\n\r\n`, 'latin1'));
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0);
}

test('hostile request targets (HTTP/1.1 and HTTP/2): every log line is JSON and names what the app received', async () => {
  const scenario = apps.scenario({ config: { log: { level: 'info', allowed: 'info' } } });
  const sidecar = await startSidecarProcess(scenario.configPath);
  // Raw bytes, split into lines only at the end: a multi-byte character may straddle two reads.
  const out: Buffer[] = [];
  sidecar.child.stdout!.on('data', (c: Buffer) => out.push(c));
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    const app = apps.app();
    const seenBefore = app.seen.length;
    const statuses: number[] = [];
    for (const t of HOSTILE_TARGETS) statuses.push(await rawStatus(port, scenario.pki, leaf, t));
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200], 'quotes, backslashes and JSON in a target get through');
    assert.ok(statuses.slice(5).every((s) => s === 400), `the rest are refused: ${statuses.join(' ')}`);

    // HTTP/2: node's client sends :path as latin1 bytes too.
    const session = http2.connect(`https://127.0.0.1:${port}`, { ...clientTlsOptions(scenario.pki, leaf, port) });
    session.on('error', () => {});
    const h2Paths = ['/orders/h2"quote?\\back', '/orders/h2\xe9\xff', '/orders/h2"},"forged":"yes'];
    for (const p of h2Paths) {
      const status = await new Promise<number>((resolve) => {
        const req = session.request({ ':path': p, 'user-agent': 'a"b\\c' });
        let s = 0;
        req.on('response', (h) => (s = Number(h[':status'])));
        req.on('error', () => resolve(0));
        req.on('close', () => resolve(s));
        req.resume();
        req.end();
      });
      statuses.push(status);
    }
    session.close();
    const allowed = statuses.filter((s) => s === 200).length;
    const received = app.seen.slice(seenBefore).map((r) => r.url);
    assert.equal(received.length, allowed, 'the app got each request that was answered 200');

    await sidecar.stop('SIGTERM');
    const lines = Buffer.concat(out).toString('utf8').split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`a log line is not JSON: ${l}`);
      }
    });
    for (const l of parsed) {
      assert.equal(l.forged, undefined, 'no field forged by a path');
      assert.ok(l.level === 30 || l.level === 40 || l.level === 50, `a level pino writes: ${JSON.stringify(l)}`);
    }
    const requestLines = parsed.filter((l) => l.event === 'request');
    assert.equal(requestLines.length, allowed, 'one request line per request that went through');
    // What the app received (node decodes target bytes as latin1) is, string for string, what the line says.
    assert.deepEqual(requestLines.map((l) => l.path), received);
    for (const l of requestLines) {
      assert.equal(l.identity, FRONTEND_ID);
      assert.equal(l.msg, 'request');
      assert.equal(l.status, 200);
      assert.equal(l.outcome, 'allow');
    }
  } finally {
    await sidecar.stop('SIGKILL');
  }
});
