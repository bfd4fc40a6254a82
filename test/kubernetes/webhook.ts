// Drives `meshward webhook serve` as the API server does: a real process with its certificate in a
// Secret-layout folder (..data swapped), AdmissionReviews POSTed over HTTPS, and reviews shaped like the
// ones kube-apiserver sends for a pod a ReplicaSet creates (defaults filled in, the service-account
// token volume already added by the ServiceAccount admission plugin).
import { request } from 'node:https';
import { writeSecretFiles } from '../../src/agent/secret-dir.js';
import { spawnMeshward, type LoggedProcess } from '../support/process.js';
import type { TestLeaf } from '../support/pki-fixtures.js';
import type { K8s } from './workloads.js';

/** Writes tls.crt/tls.key into `dir` the way the kubelet updates a Secret volume. */
export function writeTlsDir(dir: string, leaf: TestLeaf): void {
  writeSecretFiles(dir, [
    { name: 'tls.crt', data: leaf.chainPem, mode: 0o644 },
    { name: 'tls.key', data: leaf.keyPem, mode: 0o600 },
  ], new Date());
}

export interface WebhookProcess extends LoggedProcess {
  port: number;
}

/** Starts the webhook on a free port of 127.0.0.1 and waits for its `listening` log line (it logs to stderr). */
export async function startWebhook(tlsDir: string, extra: string[] = []): Promise<WebhookProcess> {
  const webhook = spawnMeshward(['webhook', 'serve', '--listen', '127.0.0.1:0', '--tls-dir', tlsDir, ...extra], { logStream: 'stderr', timeoutMs: 30_000 });
  try {
    const listening = await webhook.waitForLog((l) => l.event === 'listening', 'the webhook to listen');
    return { ...webhook, port: Number(String(listening.address).split(':').at(-1)) };
  } catch (err) {
    await webhook.stop();
    throw new Error(`the webhook did not start: ${String(err)}`);
  }
}

/** POSTs `body` (a string, sent as is) to https://localhost:PORT/PATH, trusting `ca`. */
export function post(port: number, path: string, body: string, ca: string, method = 'POST'): Promise<{ status: number; body: string; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path, method, ca, headers: { 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), type: res.headers['content-type'] }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A pod as the API server hands it to mutating webhooks after a ReplicaSet asked for it. */
export function replicaSetPod(labels: Record<string, string> = {}, annotations?: Record<string, string>): K8s {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'orders-7c9f8d-',
      namespace: 'shop',
      labels: { 'app.kubernetes.io/name': 'orders', 'pod-template-hash': '7c9f8d', ...labels },
      ...(annotations ? { annotations } : {}),
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-7c9f8d', uid: '0d3ae7d6-3c4e-4c1b-9d4e-1f3a2b6c7d8e', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      serviceAccountName: 'orders',
      containers: [{
        name: 'app',
        image: 'registry.example.com/shop/orders:1.4.2',
        ports: [{ containerPort: 8080, protocol: 'TCP' }],
        resources: {},
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
        volumeMounts: [{ name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
      }],
      volumes: [{
        name: 'kube-api-access-x7k2p',
        projected: {
          sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }],
          defaultMode: 420,
        },
      }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
    },
    status: {},
  };
}

let uidCounter = 0;

/** The AdmissionReview kube-apiserver POSTs for creating `object` (a Pod unless `kind` says otherwise). */
export function admissionReview(object: K8s, opts: { operation?: string; kind?: string; resource?: string } = {}): K8s {
  const kind = { group: '', version: 'v1', kind: opts.kind ?? 'Pod' };
  const resource = { group: '', version: 'v1', resource: opts.resource ?? 'pods' };
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: `705ab4f5-6393-11e8-b7cc-42010a8${String(++uidCounter).padStart(5, '0')}`,
      kind, resource, requestKind: kind, requestResource: resource,
      namespace: object.metadata?.namespace ?? 'shop',
      operation: opts.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'b2c5f0a4-8d1e-4e7a-9b3c-5d6e7f8a9b0c', groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}
