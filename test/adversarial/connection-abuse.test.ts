// Connection-level abuse of the sidecar's inbound TLS port (issue 7): sockets that never speak, bytes
// that are not TLS, ClientHellos cut short, a client that stops reading a large answer, and more
// connections than limits.maxConnections. Every case ends with a granted mTLS client being served.
// Handshake refusal reasons per certificate shape are in test/sidecar/handshake-refusals-counted-by-reason.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { metricValue } from '../support/sidecar.js';
import { closesWithin, httpsGet, useRig, tlsConnect, vmRssKb } from './harness.js';
import { waitFor } from '../support/poll.js';

const IDLE_SOCKETS = 300;

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends bytes on a plain TCP socket and returns what came back before the sidecar closed it (bounded). */
function sendRaw(port: number, bytes: Buffer, end: boolean): Promise<{ answer: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = netConnect({ host: '127.0.0.1', port }, () => {
      s.write(bytes);
      if (end) s.end();
    });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ answer: Buffer.concat(chunks), closed: false });
    }, 10_000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answer: Buffer.concat(chunks), closed: true });
    });
    s.once('error', (err) => {
      if (chunks.length === 0 && !s.connecting) return;
      reject(err);
    });
  });
}

/** A TLS 1.2/1.3 ClientHello record header announcing `length` bytes, followed by only `sent` of them. */
function truncatedClientHello(length: number, sent: number): Buffer {
  const header = Buffer.from([0x16, 0x03, 0x01, (length >> 8) & 0xff, length & 0xff]);
  const body = Buffer.alloc(sent);
  body[0] = 0x01; // handshake type ClientHello
  body.writeUIntBE(length - 4, 1, 3);
  body.writeUInt16BE(0x0303, 4);
  randomBytes(sent - 6).copy(body, 6);
  return Buffer.concat([header, body]);
}

describe('connection-level abuse of the inbound port', () => {
  const rig = useRig({ handshakeTimeout: '2s', maxConnections: 1000 });

  it(`${IDLE_SOCKETS} idle TCP sockets that never send a byte: a real mTLS client is served meanwhile, the idle ones are closed by the handshake timeout`, async () => {
    const idle: Socket[] = [];
    try {
      for (let i = 0; i < IDLE_SOCKETS; i++) {
        const s = await rawConnect(rig.port);
        s.on('error', () => {});
        idle.push(s);
      }
      const closedAll = Promise.all(idle.map((s) => closesWithin(s, 30_000)));
      // Served while all of them are open and silent (well within the 2 s they are given).
      const r = await httpsGet(rig.port, rig.client, '/orders/1');
      assert.equal(r.status, 200);
      const closed = await closedAll;
      assert.equal(closed.filter(Boolean).length, IDLE_SOCKETS, 'every idle socket is closed by the sidecar');
      const m = await waitFor('handshake_timeout counted', async () => {
        const t = await rig.sidecar.metrics();
        return metricValue(t, 'meshward_handshake_failures_total', { reason: 'handshake_timeout' }) >= IDLE_SOCKETS ? t : undefined;
      });
      assert.ok(metricValue(m, 'meshward_handshake_failures_total', { reason: 'handshake_timeout' }) >= IDLE_SOCKETS);
    } finally {
      for (const s of idle) s.destroy();
    }
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/2')).status, 200);
  });

  it('random bytes on the TLS port: closed without an answer other than a TLS alert, then a client is served', async () => {
    for (let i = 0; i < 20; i++) {
      const bytes = randomBytes(16 + i * 97);
      const { answer, closed } = await sendRaw(rig.port, bytes, false);
      assert.ok(closed, 'the sidecar closes the connection');
      // Nothing but (at most) a TLS alert record (content type 21) comes back.
      assert.ok(answer.length === 0 || answer[0] === 0x15, `unexpected answer ${answer.subarray(0, 16).toString('hex')}`);
    }
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/3')).status, 200);
  });

  it('plain HTTP on the TLS port: no HTTP answer, the connection is closed, counted, then a client is served', async () => {
    const before = metricValue(await rig.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'not_tls' });
    const { answer, closed } = await sendRaw(rig.port, Buffer.from('GET /orders/1 HTTP/1.1\r\nHost: localhost\r\n\r\n'), false);
    assert.ok(closed);
    assert.ok(!answer.toString('latin1').includes('HTTP/1.1 200'), 'never forwarded to the app');
    await waitFor('not_tls counted', async () =>
      metricValue(await rig.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'not_tls' }) > before ? true : undefined,
    );
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/4')).status, 200);
  });

  it('truncated ClientHellos (cut and left open, cut and half-closed, a header alone): all closed, then a client is served', async () => {
    const shapes: [string, Buffer, boolean][] = [
      ['cut at 40 of 512 bytes, left open', truncatedClientHello(512, 40), false],
      ['cut at 200 of 16000 bytes, left open', truncatedClientHello(16000, 200), false],
      ['cut at 40 of 512 bytes, then FIN', truncatedClientHello(512, 40), true],
      ['the 5-byte record header alone', truncatedClientHello(512, 40).subarray(0, 5), false],
      ['a record longer than TLS allows', truncatedClientHello(0xffff, 40), false],
    ];
    const results = await Promise.all(shapes.map(([, bytes, end]) => sendRaw(rig.port, bytes, end)));
    results.forEach((r, i) => assert.ok(r.closed, `${shapes[i]![0]}: the sidecar closes the connection`));
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/5')).status, 200);
  });

  it('a client that stops reading a 256 MiB answer: the sidecar applies backpressure and its memory stays bounded', async () => {
    const pid = rig.sidecar.child.pid!;
    const rssBefore = vmRssKb(pid);
    const socket = await tlsConnect(rig.port, rig.client, ['http/1.1']);
    socket.on('error', () => {});
    try {
      let received = 0;
      socket.on('data', (c: Buffer) => {
        received += c.length;
        if (received > 256 * 1024) socket.pause(); // read a little, then stop reading for good
      });
      socket.write('GET /orders/big HTTP/1.1\r\nHost: localhost\r\n\r\n');
      // Wait until the app is blocked by backpressure (its count stops growing), bounded.
      let last = -1;
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const now = rig.app.bigBytesWritten();
        if (now > 0 && now === last) break;
        last = now;
      }
      const rssDuring = vmRssKb(pid);
      const written = rig.app.bigBytesWritten();
      assert.ok(written < 64 * 1024 * 1024, `the app was held back by backpressure (it wrote ${written} bytes)`);
      // Generous: socket buffers and GC slack are fine, holding a large part of the 256 MiB is not.
      assert.ok(rssDuring - rssBefore < 96 * 1024, `RSS grew from ${rssBefore} to ${rssDuring} KiB`);
    } finally {
      socket.destroy();
    }
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/6')).status, 200);
  });
});

describe('connections beyond limits.maxConnections', () => {
  const MAX = 5;
  const rig = useRig({ handshakeTimeout: '10s', maxConnections: MAX });

  it('are refused while the limit is reached, and served again once below it', async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < MAX; i++) {
        const s = await tlsConnect(rig.port, rig.client, ['http/1.1']);
        s.on('error', () => {});
        held.push(s);
      }
      // One more: the kernel accepts it, node closes it at once without a handshake.
      await assert.rejects(httpsGet(rig.port, rig.client, '/orders/1', 5000), /socket hang up|ECONNRESET|disconnected|closed/i);
      await rig.sidecar.waitForLog((l) => l.event === 'connection_dropped', 'the connection_dropped log line');
    } finally {
      for (const s of held) s.destroy();
    }
    await waitFor('served again below the limit', async () => ((await httpsGet(rig.port, rig.client, '/orders/2', 5000).catch(() => ({ status: 0 }))).status === 200 ? true : undefined));
  });
});
