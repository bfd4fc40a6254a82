// With `workers: 2` the HMAC replay cache lives in the cluster primary: a signed request accepted by one
// worker and replayed (fresh connection each time) is refused as a replay by the other worker too.
// Round-robin scheduling (NODE_CLUSTER_SCHED_POLICY=rr, which the sidecar respects) spreads the
// connections over both workers; the loop is bounded and stops once the other worker has refused it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createKey, curl, headerArgs, makeIssuer, pythonSign, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

let t: CredentialSidecar;
let signer: CreatedKey;

before(async () => {
  process.env.NODE_CLUSTER_SCHED_POLICY = 'rr';
  t = await startCredentialSidecar({
    issuer: await makeIssuer(),
    config: { workers: 2 },
    async prepareKeys(file) {
      signer = await createKey(file, ['--name', 'partner', '--scopes', 'orders:write', '--hmac']);
    },
  });
  await t.sidecar.waitUntilReady();
});
after(() => t?.close());

it('a replayed signature is refused by every worker, not only the one that accepted it', async () => {
  const body = join(t.scenario.tmp, 'body.json');
  writeFileSync(body, '{"amount":5}');
  const h = await pythonSign({ method: 'POST', authority: `127.0.0.1:${t.port}`, path: '/signed/pay', body: Buffer.from('{"amount":5}'), keyid: signer.id, secretB64: signer.secret! });
  const args = [...headerArgs(h), '--data-binary', `@${body}`];
  const first = await curl(t, undefined, 'POST', '/signed/pay', args);
  assert.equal(first.status, 200, first.body);
  const accepted = await t.sidecar.waitForLog((l) => l.event === 'request' && l.path === '/signed/pay', 'the accepted request line');
  const acceptedBy = accepted.worker;
  assert.ok(acceptedBy !== undefined, 'log lines name the worker');

  let otherWorkerRefused = false;
  for (let i = 0; i < 20 && !otherWorkerRefused; i++) {
    const r = await curl(t, undefined, 'POST', '/signed/pay', args);
    assert.equal(r.status, 401, `replay ${i + 1}: ${r.body}`);
    assert.equal(r.json.code, 'replay');
    otherWorkerRefused = t.sidecar.logs.some((l) => l.event === 'request_denied' && l.refusal === 'replay' && l.worker !== acceptedBy);
  }
  assert.ok(otherWorkerRefused, `a worker other than ${String(acceptedBy)} refused the replay`);
});
