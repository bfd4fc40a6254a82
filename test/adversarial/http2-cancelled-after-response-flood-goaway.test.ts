// Streams cancelled by the client after their response started (the client reads the response headers,
// then sends RST_STREAM CANCEL, over and over): each one made the app do the work, so once cancellations
// dominate the session it is ended with GOAWAY ENHANCE_YOUR_CALM, like the rapid reset of streams
// cancelled before any answer (http2-abuse.test.ts). Raw frames, a bounded number of streams.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import http2 from 'node:http2';
import { RAPID_RESET_LIMIT } from '../../src/sidecar/http/http2.js';
import { h2Get, httpsGet, useRig } from './harness.js';
import { FLAG, FRAME, ackSettings, frame, goawayCode, parseFrames, rawH2, requestBlock } from '../support/h2-frames.js';

const rig = useRig({});

test('a flood of streams cancelled after their response headers ends the session with ENHANCE_YOUR_CALM', async () => {
  const c = await rawH2(rig);
  await ackSettings(c);
  const cancel = Buffer.from([0, 0, 0, http2.constants.NGHTTP2_CANCEL]);
  const maxStreams = RAPID_RESET_LIMIT * 4;
  let opened = 0;
  try {
    // Ten at a time: open, wait for each response's HEADERS, cancel it, next ten.
    while (opened < maxStreams && !c.socket.destroyed) {
      const ids: number[] = [];
      for (let i = 0; i < 10; i++, opened++) {
        const id = 1 + 2 * opened;
        ids.push(id);
        c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, requestBlock('/orders/big')));
      }
      const deadline = Date.now() + 10_000;
      let answered: Set<number> = new Set();
      while (Date.now() < deadline && !c.socket.destroyed) {
        const frames = parseFrames(Buffer.concat(c.received));
        answered = new Set(frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream));
        if (ids.every((id) => answered.has(id)) || goawayCode(frames) !== undefined) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      if (goawayCode(parseFrames(Buffer.concat(c.received))) !== undefined) break;
      for (const id of ids) if (answered.has(id)) c.socket.write(frame(FRAME.RST_STREAM, 0, id, cancel));
    }
    const frames = parseFrames(Buffer.concat(c.received));
    assert.equal(goawayCode(frames), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY ENHANCE_YOUR_CALM (after ${opened} streams)`);
    assert.ok(opened <= RAPID_RESET_LIMIT * 2 + 20, `the session ended soon after the limit (${opened} streams opened)`);
    assert.ok(await c.closed, 'the connection is closed');
    await rig.sidecar.waitForLog((l) => String(l.reason ?? '').includes('rapid reset'), 'the rapid-reset log line');
  } finally {
    c.socket.destroy();
  }
  assert.equal(await h2Get(rig.port, rig.client, '/orders/ok'), 200);
  assert.equal((await httpsGet(rig.port, rig.client, '/orders/ok')).status, 200);
});
