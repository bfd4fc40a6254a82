// The sidecar with a PKI of another key type than the default P-256: RSA 2048 and Ed25519 roots,
// intermediates, server and client leaves. A caller is served over HTTP/1.1 and HTTP/2, the app sees its
// identity, and a caller from a foreign CA of the same key type is refused at the handshake.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, makeScenario, startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from '../support/sidecar.js';
import type { KeyType } from '../../src/pki/keys.js';
import { h2Get, h2SessionAs, http1Get, openAs } from '../support/connection-ends.js';

for (const keyType of ['rsa-2048', 'ed25519'] as KeyType[]) {
  describe(`${keyType} certificates`, () => {
    let app: EchoHttpApp;
    let scenario: Scenario;
    let sidecar: SidecarProcess;
    const r = { scenario: undefined as unknown as Scenario, sidecar: undefined as unknown as SidecarProcess, port: 0 };

    before(async () => {
      app = await startEchoHttpApp();
      scenario = makeScenario({ app: app.url, keyType });
      sidecar = await startSidecarProcess(scenario.configPath);
      Object.assign(r, { scenario, sidecar, port: await sidecar.waitForInbound() });
      await sidecar.waitUntilReady();
    });

    after(async () => {
      await sidecar?.stop();
      await app?.close();
      scenario?.cleanup();
    });

    test('a caller is served over HTTP/1.1 and HTTP/2 and the app sees its identity', async () => {
      const leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
      assert.equal(leaf.keys.type, keyType);
      const s = await openAs(r, leaf, ['http/1.1']);
      try {
        const answer = await http1Get(s, '/orders/1');
        assert.equal(answer.status, 200);
        assert.equal(JSON.parse(answer.body).headers['x-mesh-client-id'], FRONTEND_ID);
      } finally {
        s.destroy();
      }
      const session = await h2SessionAs(r, leaf);
      try {
        assert.equal(await h2Get(session, '/orders/2'), 200);
      } finally {
        session.destroy();
      }
    });

    test('a caller from a foreign CA of the same key type is refused', async () => {
      const foreign = scenario.pki.leaf({ spiffeId: FRONTEND_ID, shape: 'untrusted-ca' });
      await assert.rejects(async () => {
        const s = await openAs(r, foreign, ['http/1.1']);
        try {
          await http1Get(s, '/orders/1', 10_000);
        } finally {
          s.destroy();
        }
      });
    });
  });
}
