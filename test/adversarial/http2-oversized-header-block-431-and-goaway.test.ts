// An HTTP/2 header block over limits.maxHeaderSize: answered 431 (with the reason) and the session
// closed with GOAWAY, as an HTTP/1.1 connection is after its 431. A block more than twice the limit never
// reaches JavaScript: node resets the stream with ENHANCE_YOUR_CALM while decoding it. Raw frames, so the
// exact sizes are sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import http2 from 'node:http2';
import { metricValue } from '../support/sidecar.js';
import { FRONTEND_ID, h2Get, useRig } from './harness.js';
import { FLAG, FRAME, ackSettings, dataText, frame, framesUntil, goawayCode, header, rawH2, requestBlock, resetCode } from '../support/h2-frames.js';

const LIMIT = 4096;
const rig = useRig({ maxHeaderSize: LIMIT });

test('a header block just over maxHeaderSize gets 431 and GOAWAY', async () => {
  const counted = () => rig.sidecar.metrics().then((m) => metricValue(m, 'meshward_requests_total', { decision: 'bad_request', route: 'protocol', identity: FRONTEND_ID }));
  const before = await counted();
  const c = await rawH2(rig);
  try {
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([requestBlock('/orders/1'), header('x-big', 'a'.repeat(LIMIT + 500))])));
    const frames = await framesUntil(c, '431 and GOAWAY', (fs) => goawayCode(fs) !== undefined && fs.some((f) => f.type === FRAME.DATA && f.stream === 1));
    assert.match(dataText(frames, 1), /"error":"headers_too_large".*larger than the limit/);
    assert.equal(goawayCode(frames), http2.constants.NGHTTP2_NO_ERROR);
    assert.ok(await c.closed, 'the session is closed');
    assert.equal(await counted(), before + 1);
  } finally {
    c.socket.destroy();
  }
  assert.equal(await h2Get(rig.port, rig.client, '/orders/ok'), 200, 'other sessions are served');
});

test('a header block over twice maxHeaderSize is reset with ENHANCE_YOUR_CALM before it reaches the app', async () => {
  const c = await rawH2(rig);
  try {
    await ackSettings(c);
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([requestBlock('/orders/1'), header('x-big', 'a'.repeat(2 * LIMIT + 100))])));
    const frames = await framesUntil(c, 'the reset', (fs) => resetCode(fs, 1) !== undefined || goawayCode(fs) !== undefined);
    const code = resetCode(frames, 1) ?? goawayCode(frames);
    assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(!frames.some((f) => f.type === FRAME.HEADERS), 'no answer from the app');
  } finally {
    c.socket.destroy();
  }
});
