// Allowed requests are logged through a buffer (issue 14: logging at near-zero cost): the lines of the
// requests answered just before SIGTERM or SIGINT still reach stdout, each once and in order, before
// the sidecar's last line, and each carries the connection's identity and address; so do the lines of
// 20000 requests answered just before SIGTERM (the last of them still buffered or on their way to the pipe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import tls from 'node:tls';
import { echoAppScenarios, startLoggingSidecar, statusOf } from '../../support/echo-app-scenarios.js';
import { FRONTEND_ID, clientTlsOptions } from '../../support/sidecar.js';

const apps = echoAppScenarios();

/** `count` keep-alive GETs of /orders/<tag>-<n> on one raw TLS connection, one after the other; resolves with the statuses. */
function sequence(opts: tls.ConnectionOptions, tag: string, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(opts);
    const statuses: number[] = [];
    let buf = '';
    const send = () => socket.write(`GET /orders/${tag}-${statuses.length} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    socket.setEncoding('latin1');
    socket.once('secureConnect', send);
    socket.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        // The echo app's JSON body comes chunked (it never holds CRLF 0 CRLF CRLF), or with a length.
        const head = buf.slice(0, end);
        let total: number;
        if (/transfer-encoding: chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', end);
          if (last < 0) return;
          total = last + 7;
        } else {
          total = end + 4 + Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < total) return;
        }
        statuses.push(Number(buf.slice(9, 12)));
        buf = buf.slice(total);
        if (statuses.length === count) {
          socket.end();
          return resolve(statuses);
        }
        send();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => (statuses.length < count ? reject(new Error(`connection closed after ${statuses.length} of ${count}`)) : undefined));
  });
}

test('20000 requests on 8 connections, then SIGTERM at once: 20000 request lines, each once', async () => {
  const { scenario, sidecar, port } = await startLoggingSidecar(apps);
  try {
    const opts = clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port);
    const tags = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const statuses = await Promise.all(tags.map((t) => sequence(opts, t, 2500)));
    assert.ok(statuses.flat().every((s) => s === 200), 'every request allowed');
    // The last lines are still in the buffer (below a chunk) or in a write on its way to the pipe.
    assert.equal(await sidecar.stop('SIGTERM'), 0);
    const counts = new Map<string, number>();
    for (const l of sidecar.logs) if (l.event === 'request') counts.set(String(l.path), (counts.get(String(l.path)) ?? 0) + 1);
    assert.equal(counts.size, 20000, 'a line for every request');
    assert.ok([...counts.values()].every((n) => n === 1), 'no line twice');
    for (const t of tags) for (const n of [0, 1249, 2499]) assert.equal(counts.get(`/orders/${t}-${n}`), 1);
    assert.equal(sidecar.logs.at(-1)?.event, 'stopped', 'the last line is the sidecar stopping');
  } finally {
    await sidecar.stop('SIGKILL');
  }
});


for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: the lines of the last 40 requests are all written before the sidecar exits`, async () => {
    const { scenario, sidecar, port } = await startLoggingSidecar(apps);
    try {
      const agent = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), keepAlive: true, maxSockets: 1 });
      const paths = Array.from({ length: 40 }, (_, i) => `/orders/${signal}-${i}`);
      try {
        // One after the other on one connection, then the signal at once: the lines are still in the
        // buffer (a few KiB, below its minimum write) when the signal arrives.
        for (const p of paths) assert.equal(await statusOf(agent, port, p), 200);
      } finally {
        agent.destroy();
      }
      assert.equal(await sidecar.stop(signal), 0);
      const requestLines = sidecar.logs.filter((l) => l.event === 'request');
      assert.deepEqual(requestLines.map((l) => l.path), paths, 'every request line, once, in order');
      for (const l of requestLines) {
        assert.equal(l.identity, FRONTEND_ID);
        assert.match(String(l.remote), /^127\.0\.0\.1/);
        assert.equal(l.status, 200);
        assert.equal(l.level, 30, 'allowed requests at info');
      }
      assert.equal(sidecar.logs.at(-1)?.event, 'stopped', 'the last line is the sidecar stopping');
    } finally {
      await sidecar.stop('SIGKILL');
    }
  });
}
