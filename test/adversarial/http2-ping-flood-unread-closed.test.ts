// A PING flood from a client that never reads the ACKs: every PING obliges the server to queue an ACK,
// so without a bound the queue grows with the flood. The session's memory cap (maxSessionMemory) ends
// the connection; the sidecar's CPU and memory stay bounded and other clients are served. Raw frames.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertBounded, h2Get, httpsGet, useRig, usage } from './harness.js';
import { FRAME, flood, frame, rawH2 } from '../support/h2-frames.js';

const rig = useRig({});

test('PING frames flooded without reading the ACKs: the connection is closed, CPU and memory bounded, others served', async () => {
  const used = usage(rig.sidecar.child.pid!);
  const c = await rawH2(rig, false);
  c.socket.pause(); // never read: the ACKs pile up on the sidecar's side
  const sent = await flood(c.socket, 500_000, (i) => {
    const opaque = Buffer.alloc(8);
    opaque.writeUInt32BE(i, 4);
    return frame(FRAME.PING, 0, 0, opaque);
  });
  assert.ok(await c.closed, `the sidecar closes the connection (after ${sent} PING frames)`);
  assertBounded(used, 'PING flood');
  assert.equal(await h2Get(rig.port, rig.client, '/orders/ok'), 200);
  assert.equal((await httpsGet(rig.port, rig.client, '/orders/ok')).status, 200);
});
