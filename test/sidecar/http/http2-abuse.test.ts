// HTTP/2 abuse: rapid reset (streams opened and cancelled at once, over and over) is detected and logged
// and the session shut down (GOAWAY ENHANCE_YOUR_CALM); the sidecar keeps serving everyone else; the
// stream limit is advertised.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import { RAPID_RESET_LIMIT } from '../../../src/sidecar/http/http2.js';
import { curl, useRecordingHarness } from './harness.js';
import { waitFor } from '../../support/poll.js';

describe('HTTP/2 abuse', () => {
  const rig = useRecordingHarness();

  it('rapid reset is detected, the session is shut down, and others are still served', async () => {
    const session = http2.connect(rig.h.url, { ...rig.h.clients.frontend!.tls, servername: 'localhost' });
    session.on('error', () => {});
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      // 5 batches of 50 (under the 100 concurrent streams allowed), each stream cancelled right after it
      // is sent: 250 cancellations, more than RAPID_RESET_LIMIT and all of the session's streams.
      for (let batch = 0; batch < 5; batch++) {
        const ready: Promise<void>[] = [];
        for (let i = 0; i < 50; i++) {
          const s = session.request({ ':path': `/orders/held/${batch}-${i}` });
          s.on('error', () => {});
          ready.push(
            new Promise<void>((resolve) => {
              s.once('response', () => resolve());
              s.once('close', () => resolve());
              setImmediate(() => s.close(http2.constants.NGHTTP2_CANCEL));
            }),
          );
        }
        await Promise.race([Promise.all(ready), sessionClosed]);
      }
      assert.ok(250 > RAPID_RESET_LIMIT);
      await waitFor('the rapid-reset log line', () => rig.h.logs.some((l) => String(l.reason).includes('rapid reset')));
      const line = rig.h.logs.find((l) => String(l.reason).includes('rapid reset'))!;
      assert.equal(line.identity, rig.h.clients.frontend!.leaf.spiffeId);
      assert.equal(rig.app.held, 0, 'no cancelled request is left waiting at the app');
    } finally {
      session.destroy();
    }
    const r = await curl(rig.h, 'billing', ['--http2', `${rig.h.url}/orders`]);
    assert.equal(r.status, 200);
  });

  it('the session advertises at most 100 concurrent streams', async () => {
    const session = http2.connect(rig.h.url, { ...rig.h.clients.billing!.tls, servername: 'localhost' });
    session.on('error', () => {});
    try {
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      assert.equal(session.remoteSettings.maxConcurrentStreams, 100);
    } finally {
      session.destroy();
    }
  });
});
