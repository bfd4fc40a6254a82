// limits.requestTimeout applies to each HTTP/2 stream as it does to each HTTP/1.1 request: a stream that
// sends its headers and part of a body, then stalls, is answered 408 and reset (RST_STREAM NO_ERROR,
// "stop sending") once the timeout passes, the refusal is counted, and the session stays usable for
// other streams. Sent as raw frames, so the stall is exactly that.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricValue } from '../support/sidecar.js';
import { FRONTEND_ID, useRig } from './harness.js';
import { FLAG, FRAME, dataText, frame, framesUntil, rawH2, requestHeaders, requestBlock } from '../support/h2-frames.js';

const rig = useRig({ requestTimeout: '2s' });

test('a stream whose body stalls gets 408 and RST_STREAM after limits.requestTimeout; the session keeps serving', async () => {
  const counted = () => rig.sidecar.metrics().then((m) => metricValue(m, 'meshward_requests_total', { decision: 'bad_request', route: 'protocol', identity: FRONTEND_ID }));
  const before = await counted();
  const c = await rawH2(rig);
  try {
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestHeaders('POST', '/orders')));
    c.socket.write(frame(FRAME.DATA, 0, 1, Buffer.from('{"partial":')));
    const frames = await framesUntil(c, 'the stalled stream to be ended', (fs) => fs.some((f) => f.type === FRAME.RST_STREAM && f.stream === 1));
    assert.match(dataText(frames, 1), /request timeout/, 'the 408 body says why');
    assert.equal(frames.find((f) => f.type === FRAME.RST_STREAM && f.stream === 1)!.payload.readUInt32BE(0), 0, 'RST_STREAM NO_ERROR after the answer');
    assert.equal(await counted(), before + 1, 'the timeout is counted as a refused request');

    // Only the stream ended: the session still takes requests.
    c.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('/orders/after')));
    const later = await framesUntil(c, 'the next stream’s answer', (fs) => fs.some((f) => f.type === FRAME.DATA && f.stream === 3 && (f.flags & FLAG.END_STREAM) !== 0));
    assert.match(dataText(later, 3), /\/orders\/after/);
    assert.ok(!later.some((f) => f.type === FRAME.GOAWAY), 'no GOAWAY');
  } finally {
    c.socket.destroy();
  }
});
