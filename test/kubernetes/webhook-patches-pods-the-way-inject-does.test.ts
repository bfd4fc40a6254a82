// The admission webhook over HTTPS, with AdmissionReviews shaped as kube-apiserver sends them: the uid is
// echoed, a pod that asks for the mesh gets a base64 JSONPatch which, applied (RFC 6902), gives exactly
// the pod `meshward inject --config-map meshward-sidecar` prints for it; pods that did not ask, opted out
// or are already injected get no patch; a pod that cannot take the sidecar is refused with why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { makeTestPki } from '../support/pki-fixtures.js';
import { runCommand } from '../support/cli.js';
import { applyJsonPatch } from '../support/json-patch.js';
import { admissionReview, post, replicaSetPod, startWebhook, writeTlsDir, type WebhookProcess } from './webhook.js';
import { inject, parseAll, type K8s } from './workloads.js';
import { tempDir } from '../support/temp-dir.js';

const pki = makeTestPki();
const { dir, cleanup: removeDir } = tempDir('meshward-webhook-');
let webhook: WebhookProcess;

before(async () => {
  writeTlsDir(join(dir, 'tls'), pki.leaf({ spiffeId: 'spiffe://example.org/ns/meshward-system/sa/meshward-webhook', dns: ['localhost'] }));
  webhook = await startWebhook(join(dir, 'tls'));
});
after(async () => {
  await webhook?.stop();
  removeDir();
});

/** POSTs a review and returns the response part, checking what every answer must hold. */
async function review(path: string, object: K8s, opts?: Parameters<typeof admissionReview>[1]): Promise<K8s> {
  const sent = admissionReview(object, opts);
  const res = await post(webhook.port, path, JSON.stringify(sent), pki.bundlePem);
  assert.equal(res.status, 200, res.body);
  assert.match(res.type ?? '', /^application\/json/);
  const answer = JSON.parse(res.body);
  assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
  assert.equal(answer.kind, 'AdmissionReview');
  assert.equal(answer.response.uid, sent.request.uid, 'the uid is echoed');
  return answer.response;
}

function patched(pod: K8s, response: K8s): K8s {
  assert.equal(response.allowed, true);
  assert.equal(response.patchType, 'JSONPatch');
  return applyJsonPatch(pod, JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')));
}

/** What `meshward inject` prints for the same pod, with the ConfigMap the webhook mounts. */
async function injectedByCli(pod: K8s): Promise<K8s> {
  const result = await inject(YAML.stringify(pod), ['--config-map', 'meshward-sidecar']);
  assert.equal(result.code, 0, result.stderr);
  const [out] = parseAll(result.stdout);
  return out!;
}

test('webhook /inject: a pod labelled enabled is patched into what inject prints', async () => {
  const pod = replicaSetPod({ 'meshward.io/inject': 'enabled' });
  const meshed = patched(pod, await review('/inject', pod));
  assert.deepEqual(meshed, await injectedByCli(pod));
  assert.equal(meshed.spec.initContainers[0].name, 'meshward');
  assert.equal(meshed.spec.volumes[0].name, 'kube-api-access-x7k2p', "the pod's own volumes stay first");
  // Injected already (the API server re-running the webhook, or a pod made from injected YAML): no patch.
  const again = await review('/inject', meshed);
  assert.equal(again.allowed, true);
  assert.equal(again.patch, undefined);
});

test('webhook: a pod injected earlier with its own ConfigMap (inject, the component) is left as it is', async () => {
  const result = await inject(YAML.stringify(replicaSetPod()), ['--trust-domain', 'example.org', '--image', 'meshward:0.0.9']);
  assert.equal(result.code, 0, result.stderr);
  const pod = parseAll(result.stdout)[1]!;
  assert.equal(pod.spec.volumes.at(-1).configMap.name, 'meshward-orders-7c9f8d', 'named after generateName');
  const response = await review('/inject-namespace', pod);
  assert.equal(response.allowed, true);
  assert.equal(response.patch, undefined, 'the webhook must not swap the ConfigMap or the image inject chose');
});

test('webhook /inject: an annotation saying enabled is honoured; no label or annotation, no patch', async () => {
  const annotated = replicaSetPod({}, { 'meshward.io/inject': 'enabled' });
  assert.deepEqual(patched(annotated, await review('/inject', annotated)), await injectedByCli(annotated));
  const plain = await review('/inject', replicaSetPod());
  assert.equal(plain.allowed, true);
  assert.equal(plain.patch, undefined);
  assert.equal(plain.patchType, undefined);
});

test('webhook /inject-namespace: every pod is patched unless it says disabled', async () => {
  const pod = replicaSetPod();
  assert.deepEqual(patched(pod, await review('/inject-namespace', pod)), await injectedByCli(pod));
  for (const optedOut of [replicaSetPod({ 'meshward.io/inject': 'disabled' }), replicaSetPod({}, { 'meshward.io/inject': 'disabled' })]) {
    const response = await review('/inject-namespace', optedOut);
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
  }
});

test('webhook: other kinds and operations pass untouched; a pod that cannot take the sidecar is refused with why', async () => {
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'shop' }, data: {} };
  const other = await review('/inject-namespace', configMap, { kind: 'ConfigMap', resource: 'configmaps' });
  assert.deepEqual(Object.keys(other).sort(), ['allowed', 'uid']);
  const update = await review('/inject-namespace', replicaSetPod(), { operation: 'UPDATE' });
  assert.equal(update.patch, undefined);

  const clash = replicaSetPod({ 'meshward.io/inject': 'enabled' });
  clash.spec.containers[0].name = 'meshward';
  const refused = await review('/inject', clash);
  assert.equal(refused.allowed, false);
  assert.equal(refused.status.code, 422);
  assert.match(refused.status.message, /a container is already named "meshward"/);
});

test('webhook: curl, trusting only the CA bundle, gets the same answer', async () => {
  const bundle = join(dir, 'bundle.crt');
  writeFileSync(bundle, pki.bundlePem);
  const sent = admissionReview(replicaSetPod({ 'meshward.io/inject': 'enabled' }));
  const result = await runCommand('curl', ['-sS', '--fail-with-body', '--cacert', bundle, '--resolve', `localhost:${webhook.port}:127.0.0.1`,
    '-H', 'content-type: application/json', '--data-binary', '@-', `https://localhost:${webhook.port}/inject`], { input: JSON.stringify(sent) });
  assert.equal(result.code, 0, result.stderr);
  const answer = JSON.parse(result.stdout);
  assert.equal(answer.response.uid, sent.request.uid);
  assert.deepEqual(patched(sent.request.object, answer.response), await injectedByCli(sent.request.object));
});
