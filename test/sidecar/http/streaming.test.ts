// Large bodies stream both ways (20 MB up and down, HTTP/1.1 and HTTP/2 clients, to an http:// app),
// with backpressure: the upload is produced chunk by chunk as the sidecar asks for it and the app counts
// bytes without keeping them; a client that aborts mid-download makes the sidecar abort the app request.
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { useRecordingHarness, type Seen } from './harness.js';

const SIZE = 20 * 1024 * 1024;

/** A body of `size` bytes made on demand (never held whole). */
function generated(size: number): Readable {
  let left = size;
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}

describe('streamed bodies both ways', () => {
  const rig = useRecordingHarness();

  const agentOpts = (): https.RequestOptions => ({ ...rig.h.clients.frontend!.tls, servername: 'localhost', host: '127.0.0.1', port: rig.h.port });

  it('HTTP/1.1: 20 MB chunked upload reaches the app', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request({ ...agentOpts(), method: 'POST', path: '/orders/upload' }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      generated(SIZE).pipe(req);
    });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as Seen).bytes, SIZE);
  });

  it('HTTP/1.1: 20 MB download reaches the client', async () => {
    const got = await new Promise<number>((resolve, reject) => {
      https
        .get({ ...agentOpts(), path: `/orders/download?bytes=${SIZE}` }, (r) => {
          let n = 0;
          r.on('data', (d: Buffer) => (n += d.length));
          r.on('end', () => resolve(n));
        })
        .on('error', reject);
    });
    assert.equal(got, SIZE);
  });

  it('HTTP/2: 20 MB upload (no content-length) and 20 MB download', async () => {
    const session = http2.connect(rig.h.url, { ...rig.h.clients.frontend!.tls, servername: 'localhost' });
    try {
      const upload = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':method': 'PUT', ':path': '/orders/upload' });
        let body = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (body += d));
        s.on('end', () => resolve(body));
        s.on('error', reject);
        generated(SIZE).pipe(s);
      });
      const seen = JSON.parse(upload) as Seen;
      assert.equal(seen.bytes, SIZE);
      assert.equal(seen.headers['transfer-encoding'], 'chunked');
      const downloaded = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': `/orders/download?bytes=${SIZE}` });
        let n = 0;
        s.on('data', (d: Buffer) => (n += d.length));
        s.on('end', () => resolve(n));
        s.on('error', reject);
      });
      assert.equal(downloaded, SIZE);
    } finally {
      session.close();
    }
  });

  it('a client that aborts a download mid-way frees the request', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = https.get({ ...agentOpts(), path: `/orders/download?bytes=${SIZE}` }, (r) => {
        r.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    });
    // Bounded wait for the frontend to notice the abort and finish the request.
    for (let i = 0; i < 200 && rig.h.frontend.inflight > 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(rig.h.frontend.inflight, 0);
  });
});
