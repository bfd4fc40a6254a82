// limits.idleTimeout (2s here) through the real sidecar process: an HTTP/1.1 keep-alive connection and an
// HTTP/2 session that sit idle after a request are closed by the sidecar; one kept busy well past the
// timeout (a request every 250 ms for 5 s, then a request the app answers after 5 s) stays open on the
// same connection the whole time, and is closed once it falls idle. No timing is asserted: only that the
// busy connection survives and the idle one ends (polled with generous bounds).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Agent, request } from 'node:https';
import type { Socket } from 'node:net';
import { FRONTEND_ID, clientTlsOptions } from '../support/sidecar.js';
import { sleep, waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';
import { h2Get } from '../support/connection-ends.js';

const IDLE_TIMEOUT_MS = 2000;
/** How long the busy connections are kept busy: well past the idle timeout. */
const BUSY_FOR_MS = 5000;
const SLOW_MS = 5000;

describe('limits.idleTimeout', () => {
  const rig = runningSidecar('http', { config: { limits: { idleTimeout: `${IDLE_TIMEOUT_MS / 1000}s` } } });

  /** One caller for the whole file: a keep-alive agent pools by TLS options, a new key would mean a new socket. */
  let callerTls: ReturnType<typeof clientTlsOptions> | undefined;
  const tls = () => (callerTls ??= clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port));

  /** GET over a keep-alive agent; resolves with the status and the socket it went over. */
  function h1Get(agent: Agent, path: string): Promise<{ status: number; socket: Socket }> {
    return new Promise((resolve, reject) => {
      const req = request({ ...tls(), path, agent, timeout: 30_000 }, (res) => {
        const socket = res.socket; // null once the agent takes it back, after 'end'
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socket }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  /** An HTTP/2 session to the sidecar, and whether it has seen GOAWAY and its close so far. */
  function h2Open(): { session: http2.ClientHttp2Session; seen: { goaway: boolean; closed: boolean } } {
    const session = http2.connect(`https://127.0.0.1:${rig.port}`, tls());
    const seen = { goaway: false, closed: false };
    session.on('error', () => {});
    session.on('goaway', () => (seen.goaway = true));
    session.on('close', () => (seen.closed = true));
    return { session, seen };
  }

  it('HTTP/1.1: a keep-alive connection idle after a request is closed', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const { status, socket } = await h1Get(agent, '/orders/1');
      assert.equal(status, 200);
      let closed = socket.destroyed;
      socket.once('close', () => (closed = true));
      await waitFor('the sidecar to close the idle connection', () => (closed ? true : undefined), { timeoutMs: 20_000 });
    } finally {
      agent.destroy();
    }
  });

  it('HTTP/1.1: a connection kept busy past the timeout stays open, then closes once idle', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await h1Get(agent, '/orders/1');
      let closed = false;
      first.socket.once('close', () => (closed = true));
      const until = Date.now() + BUSY_FOR_MS;
      let requests = 1;
      while (Date.now() < until) {
        await sleep(250);
        const r = await h1Get(agent, `/orders/${requests++}`);
        assert.equal(r.status, 200);
        assert.ok(r.socket === first.socket, `request ${requests} went over the same connection`);
      }
      const slow = await h1Get(agent, `/slow?ms=${SLOW_MS}`);
      assert.equal(slow.status, 200, 'a response slower than idleTimeout is not cut');
      assert.ok(slow.socket === first.socket, 'the slow request went over the same connection');
      assert.equal(closed, false, 'the busy connection was never closed');
      await waitFor('the connection to be closed once idle', () => (closed ? true : undefined), { timeoutMs: 20_000 });
    } finally {
      agent.destroy();
    }
  });

  it('HTTP/2: a session idle after a request gets GOAWAY and is closed', async () => {
    const { session, seen } = h2Open();
    try {
      assert.equal(await h2Get(session, '/orders/1'), 200);
      await waitFor('the sidecar to close the idle session', () => (seen.closed ? true : undefined), { timeoutMs: 20_000 });
      assert.equal(seen.goaway, true, 'GOAWAY before the close');
    } finally {
      session.destroy();
    }
  });

  it('HTTP/2: a session kept busy past the timeout stays open, then closes once idle', async () => {
    const { session, seen } = h2Open();
    try {
      const until = Date.now() + BUSY_FOR_MS;
      let requests = 0;
      while (Date.now() < until) {
        assert.equal(await h2Get(session, `/orders/${requests++}`), 200);
        await sleep(250);
      }
      assert.equal(await h2Get(session, `/slow?ms=${SLOW_MS}`), 200, 'a stream slower than idleTimeout is not cut');
      assert.equal(seen.goaway, false, 'no GOAWAY while busy (an open stream is not idle)');
      assert.equal(seen.closed, false);
      await waitFor('the session to be closed once idle', () => (seen.closed ? true : undefined), { timeoutMs: 20_000 });
      assert.equal(seen.goaway, true);
    } finally {
      session.destroy();
    }
  });
});
