// HTTP/2 abuse against a real sidecar process (issue 7): rapid reset, more concurrent streams than
// advertised, huge header blocks (an HPACK bomb and a CONTINUATION flood), and a SETTINGS flood. For
// each: the abusive connection is closed, the sidecar's CPU and memory stay bounded, and other clients
// are served. (test/sidecar/http/http2-abuse.test.ts covers rapid-reset detection in the frontend
// itself and the advertised stream limit.)
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import { RAPID_RESET_LIMIT } from '../../src/sidecar/http/http2.js';
import { FRONTEND_ID, assertBounded, cpuTicks, h2Get, httpsGet, useRig, vmRssKb } from './harness.js';
import { FLAG, FRAME, establishedFrom, flood, frame, frameTypes, hpackInt, literal, rawH2, requestBlock } from '../support/h2-frames.js';
import { waitFor } from '../support/poll.js';

const BOMBS = 300;
describe('HTTP/2 abuse against the sidecar process', () => {
  const rig = useRig({ handshakeTimeout: '5s' });

  async function stillServed(): Promise<void> {
    assert.equal(await h2Get(rig.port, rig.client, '/orders/ok'), 200);
    assert.equal((await httpsGet(rig.port, rig.client, '/orders/ok')).status, 200);
  }

  function bounded(pid: number, rssBefore: number, cpuBefore: number, what: string): void {
    assertBounded({ pid, rssKb: rssBefore, cpu: cpuBefore }, what);
  }

  it('rapid reset: streams opened and cancelled in a loop get the connection closed (GOAWAY, then the socket), others served', async () => {
    const pid = rig.sidecar.child.pid!;
    const rss0 = vmRssKb(pid);
    const cpu0 = cpuTicks(pid);
    const c = await rawH2(rig);
    const total = RAPID_RESET_LIMIT * 20; // bounded: far past the limit, stops early when closed
    const sent = await flood(c.socket, total, (i) => {
      const id = 1 + 2 * i;
      return Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, requestBlock(`/orders/r${i}`)), frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8]))]);
    });
    assert.ok(await c.closed, `the sidecar closes the connection (after ${sent} open+cancel pairs)`);
    assert.ok(frameTypes(Buffer.concat(c.received)).includes(FRAME.GOAWAY), 'a GOAWAY was sent');
    await rig.sidecar.waitForLog((l) => String(l.reason ?? '').includes('rapid reset'), 'the rapid-reset log line');
    bounded(pid, rss0, cpu0, 'rapid reset');
    await stillServed();
  });

  it('rapid reset with the node http2 client: the sidecar closes the TCP connection (ss shows it gone), others served', async () => {
    // Finding: node's http2 client session does not always emit 'close' after the sidecar's GOAWAY and
    // close (the HTTP helper's "did not close promptly"), but the connection itself is gone on both
    // ends: the server side is correct, so this asserts on the kernel's view of the connection.
    const session = http2.connect(`https://127.0.0.1:${rig.port}`, { ...rig.client });
    session.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      const localPort = session.socket.localPort!;
      assert.ok(establishedFrom(localPort), 'the connection is established at first');
      for (let batch = 0; batch < 10 && !session.closed && !session.destroyed && establishedFrom(localPort); batch++) {
        const ready: Promise<void>[] = [];
        for (let i = 0; i < 50; i++) {
          const s = session.request({ ':path': `/orders/c${batch}-${i}` });
          s.on('error', () => {});
          ready.push(new Promise<void>((resolve) => {
            s.once('close', () => resolve());
            setImmediate(() => s.close(http2.constants.NGHTTP2_CANCEL));
          }));
        }
        await Promise.race([Promise.all(ready), new Promise((r) => setTimeout(r, 2000))]);
      }
      await rig.sidecar.waitForLog((l) => String(l.reason ?? '').includes('rapid reset') && l.identity === FRONTEND_ID, 'the rapid-reset log line');
      await waitFor('the TCP connection closed', () => (establishedFrom(localPort) ? undefined : true));
    } finally {
      session.destroy();
    }
    await stillServed();
  });

  it('too many concurrent streams: streams past the advertised 100 are refused and the connection closed, others served', async () => {
    const pid = rig.sidecar.child.pid!;
    const rss0 = vmRssKb(pid);
    const cpu0 = cpuTicks(pid);
    const c = await rawH2(rig);
    // 600 streams held open at the app (/slow waits), none cancelled.
    const sent = await flood(c.socket, 600, (i) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, requestBlock('/slow?ms=3000')));
    assert.ok(await c.closed, `the sidecar closes the connection (after ${sent} streams)`);
    const types = frameTypes(Buffer.concat(c.received));
    assert.ok(types.includes(FRAME.RST_STREAM) || types.includes(FRAME.GOAWAY), 'streams past the limit were refused');
    bounded(pid, rss0, cpu0, 'too many streams');
    await stillServed();
  });

  it(`HPACK bombs (one 4 KB header indexed, then referenced 4000 times: 16 MB decoded per request, ${BOMBS} requests): each refused, bounded, others served`, async () => {
    // Node refuses a header list over maxHeaderSize with RST_STREAM ENHANCE_YOUR_CALM while decoding,
    // before anything is allocated for it or reaches JavaScript, and keeps the connection (a stream
    // error, RFC 9113 §5.4.2); see SECURITY.md.
    const pid = rig.sidecar.child.pid!;
    const rss0 = vmRssKb(pid);
    const cpu0 = cpuTicks(pid);
    const c = await rawH2(rig);
    // Literal with incremental indexing, new name (0x40): x-bomb: 4000 × 'a' enters the dynamic table as index 62.
    const value = 'a'.repeat(4000);
    const insert = Buffer.concat([Buffer.from([0x40, 6]), Buffer.from('x-bomb'), hpackInt(value.length, 7, 0), Buffer.from(value)]);
    const refs = Buffer.alloc(4000, 0x80 | 62);
    const bomb = (id: number, first: boolean): Buffer =>
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Buffer.concat([requestBlock(`/orders/bomb${id}`), first ? insert : Buffer.alloc(0), refs]));
    try {
      // The first block inserts the 4 KB entry; every later one only references it (4 KB on the wire).
      c.socket.write(bomb(1, true));
      const sent = 1 + (await flood(c.socket, BOMBS - 1, (i) => bomb(3 + 2 * i, false)));
      const resets = (): number => frameTypes(Buffer.concat(c.received)).filter((t) => t === FRAME.RST_STREAM).length;
      await waitFor('every bomb refused', () => (resets() >= sent || c.socket.destroyed ? true : undefined));
      const types = frameTypes(Buffer.concat(c.received));
      assert.ok(!types.includes(FRAME.HEADERS), 'no bomb got an answer from the app');
      bounded(pid, rss0, cpu0, 'HPACK bomb');
    } finally {
      c.socket.destroy();
    }
    await stillServed();
  });

  it('a CONTINUATION flood (a header block that never ends): the connection is closed, others served', async () => {
    const pid = rig.sidecar.child.pid!;
    const rss0 = vmRssKb(pid);
    const cpu0 = cpuTicks(pid);
    const c = await rawH2(rig);
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, requestBlock('/orders/cont')));
    const filler = literal('x-pad', 'b'.repeat(100));
    const sent = await flood(c.socket, 20_000, () => frame(FRAME.CONTINUATION, 0, 1, filler));
    assert.ok(await c.closed, `the sidecar closes the connection (after ${sent} CONTINUATION frames)`);
    bounded(pid, rss0, cpu0, 'CONTINUATION flood');
    await stillServed();
  });

  it('a SETTINGS flood from a client that never reads the ACKs: the connection is closed, CPU and memory bounded, others served', async () => {
    const pid = rig.sidecar.child.pid!;
    const rss0 = vmRssKb(pid);
    const cpu0 = cpuTicks(pid);
    const c = await rawH2(rig, false);
    c.socket.pause(); // never read: the ACKs pile up on the sidecar's side
    const setting = Buffer.alloc(6);
    setting.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
    const sent = await flood(c.socket, 200_000, (i) => {
      setting.writeUInt32BE(65535 + (i % 1000), 2);
      return frame(FRAME.SETTINGS, 0, 0, Buffer.from(setting));
    });
    assert.ok(await c.closed, `the sidecar closes the connection (after ${sent} SETTINGS frames)`);
    bounded(pid, rss0, cpu0, 'SETTINGS flood');
    await stillServed();
  });
});
