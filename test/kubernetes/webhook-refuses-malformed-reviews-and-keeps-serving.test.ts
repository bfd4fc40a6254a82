// What the webhook refuses: a body that is not an admission.k8s.io/v1 AdmissionReview of an object gets
// 400 with one line saying what is wrong, wrong paths and methods get 404/405, and the server keeps
// answering good reviews after each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeTestPki } from '../support/pki-fixtures.js';
import { admissionReview, post, replicaSetPod, startWebhook, writeTlsDir, type WebhookProcess } from './webhook.js';
import { tempDir } from '../support/temp-dir.js';

const pki = makeTestPki();
const { dir, cleanup: removeDir } = tempDir('meshward-webhook-');
let webhook: WebhookProcess;

before(async () => {
  writeTlsDir(dir, pki.leaf({ dns: ['localhost'] }));
  webhook = await startWebhook(dir);
});
after(async () => {
  await webhook?.stop();
  removeDir();
});

const good = () => admissionReview(replicaSetPod({ 'meshward.io/inject': 'enabled' }));
const without = (path: string[]) => {
  const r = good();
  let at: any = r;
  for (const k of path.slice(0, -1)) at = at[k];
  delete at[path.at(-1)!];
  return JSON.stringify(r);
};

const MALFORMED: [string, string, RegExp][] = [
  ['not JSON', '{"kind": "AdmissionReview",', /^malformed AdmissionReview: not JSON: /],
  ['an empty body', '', /^malformed AdmissionReview: not JSON: /],
  ['a JSON list', '[]', /^malformed AdmissionReview: the body is not a JSON object$/],
  ['the v1beta1 API', JSON.stringify({ ...good(), apiVersion: 'admission.k8s.io/v1beta1' }), /expected apiVersion admission\.k8s\.io\/v1, kind AdmissionReview; got admission\.k8s\.io\/v1beta1, AdmissionReview$/],
  ['another kind', JSON.stringify({ ...good(), kind: 'TokenReview' }), /got admission\.k8s\.io\/v1, TokenReview$/],
  ['no request', without(['request']), /^malformed AdmissionReview: request: missing$/],
  ['no uid', without(['request', 'uid']), /^malformed AdmissionReview: request\.uid: missing$/],
  ['a pod review without the pod', without(['request', 'object']), /^malformed AdmissionReview: request\.object: missing \(a Pod\)$/],
];

for (const [name, body, message] of MALFORMED) {
  test(`webhook answers 400 to ${name}, then still answers a good review`, async () => {
    const res = await post(webhook.port, '/inject', body, pki.bundlePem);
    assert.equal(res.status, 400);
    assert.equal(res.body.trimEnd().split('\n').length, 1);
    assert.match(res.body.trimEnd(), message);
    const ok = await post(webhook.port, '/inject', JSON.stringify(good()), pki.bundlePem);
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).response.patchType, 'JSONPatch');
  });
}

test('webhook: unknown paths are 404, GET on a review path is 405, /healthz is 200', async () => {
  assert.equal((await post(webhook.port, '/mutate', JSON.stringify(good()), pki.bundlePem)).status, 404);
  assert.equal((await post(webhook.port, '/inject', '', pki.bundlePem, 'GET')).status, 405);
  const health = await post(webhook.port, '/healthz', '', pki.bundlePem, 'GET');
  assert.equal(health.status, 200);
  assert.ok(webhook.logs.some((l) => l.event === 'malformed_review'), 'refusals are logged');
});
