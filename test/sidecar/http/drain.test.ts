// drain(): in-flight requests finish, HTTP/1.1 answers carry Connection: close, HTTP/2 sessions get
// GOAWAY, and drain resolves once nothing is in flight (requests are held by the app until released,
// so nothing here depends on timing).
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { startHarness, startRecordingApp, type Harness, type RecordingApp } from './harness.js';
import { waitFor } from '../../support/poll.js';

describe('drain', () => {
  let app: RecordingApp;
  before(async () => {
    app = await startRecordingApp();
  });
  after(async () => {
    app?.releaseHeld();
    await app?.close();
  });

  it('HTTP/1.1: the in-flight request completes with Connection: close, then drain resolves', async () => {
    const h: Harness = await startHarness({ app: app.url });
    try {
      const agent = new https.Agent({ keepAlive: true });
      const response = new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
        https
          .get({ ...h.clients.frontend!.tls, servername: 'localhost', host: '127.0.0.1', port: h.port, path: '/orders/held', agent }, (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => (body += d));
            r.on('end', () => resolve({ status: r.statusCode!, connection: r.headers.connection, body }));
          })
          .on('error', reject);
      });
      await waitFor('the app to hold the request', () => app.held === 1);
      let drained = false;
      const draining = h.frontend.drain(60_000).then(() => {
        drained = true;
      });
      await new Promise((r) => setImmediate(r));
      assert.equal(drained, false, 'drain waits for the in-flight request');
      assert.equal(h.frontend.inflight, 1);
      app.releaseHeld();
      const r = await response;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'released');
      assert.equal(r.connection, 'close');
      await draining;
      assert.equal(h.frontend.inflight, 0);
      agent.destroy();
    } finally {
      await h.close();
    }
  });

  it('HTTP/2: the session gets GOAWAY, the in-flight stream completes, then drain resolves', async () => {
    const h: Harness = await startHarness({ app: app.url });
    const session = http2.connect(h.url, { ...h.clients.frontend!.tls, servername: 'localhost' });
    try {
      let goaway = false;
      session.on('goaway', () => {
        goaway = true;
      });
      session.on('error', () => {});
      const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':path': '/orders/held' });
        let status = 0;
        let body = '';
        s.setEncoding('utf8');
        s.on('response', (hd) => (status = Number(hd[':status'])));
        s.on('data', (d: string) => (body += d));
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
      });
      await waitFor('the app to hold the request', () => app.held === 1);
      const draining = h.frontend.drain(60_000);
      await waitFor('GOAWAY', () => goaway);
      app.releaseHeld();
      const r = await response;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'released');
      await draining;
      assert.equal(h.frontend.inflight, 0);
    } finally {
      session.destroy();
      await h.close();
    }
  });
});
