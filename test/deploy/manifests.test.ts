// What the rendered manifests promise, asserted on the rendered objects (not on the source files):
// meshward as a native sidecar (init container with restartPolicy Always, probes on the admin port's
// /readyz, hardened security context, keys in memory, a projected token for audience meshward), a CA of two
// replicas on PostgreSQL with a disruption budget and a readiness probe that follows the database, the SQLite
// overlay that never runs two writers against its file, and a NetworkPolicy that lets only sidecars reach it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import YAML from 'yaml';
import { FIXTURES, HAVE_KUBECTL, deployCheck, kustomize, type K8sObject } from './check-module.js';

const renderings: [string, K8sObject[]][] = [['fallback renderer', kustomize.renderKustomization(deployCheck.MANIFEST_DIR)]];
if (HAVE_KUBECTL) renderings.push(['kubectl kustomize', deployCheck.renderWithKubectl(deployCheck.MANIFEST_DIR)!]);

function find(objects: K8sObject[], kind: string, namespace: string | undefined, namePrefix: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.namespace === namespace && o.metadata.name.startsWith(namePrefix));
  assert.equal(found.length, 1, `expected one ${kind} ${namespace}/${namePrefix}*, found ${found.length}`);
  return found[0]!;
}

/** The port number a probe names (by number or by the container's port name). */
function probePort(container: K8sObject, port: number | string): number {
  if (typeof port === 'number') return port;
  const named = (container.ports ?? []).find((p: { name?: string }) => p.name === port);
  assert.ok(named, `probe port ${port} is not a port of container ${container.name}`);
  return named.containerPort;
}

for (const [renderer, objects] of renderings) {
  test(`example workload: meshward runs as a native sidecar (${renderer})`, () => {
    const deployment = find(objects, 'Deployment', 'meshward-example', 'orders');
    const pod = deployment.spec.template.spec;
    const sidecar = pod.initContainers.find((c: { name: string }) => c.name === 'meshward');
    assert.ok(sidecar, 'no meshward init container');
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(sidecar.args.slice(0, 2), ['sidecar', '--config']);

    // The config the sidecar reads: the generated ConfigMap, mounted where --config points.
    const configVolume = pod.volumes.find((v: { name: string }) => v.name === 'meshward-sidecar');
    const configMap = find(objects, 'ConfigMap', 'meshward-example', 'meshward-sidecar-');
    assert.equal(configVolume.configMap.name, configMap.metadata.name, 'the volume must name the generated (hashed) ConfigMap');
    const configMount = sidecar.volumeMounts.find((m: { name: string }) => m.name === 'meshward-sidecar');
    assert.equal(sidecar.args[2], `${configMount.mountPath}/sidecar.yaml`);
    const config = YAML.parse(configMap.data['sidecar.yaml']);
    assert.equal(config.policy, `${configMount.mountPath}/policy.yaml`);
    assert.ok(YAML.parse(configMap.data['policy.yaml']).routes.length > 0);

    // Probes: /readyz on the admin port the config listens on (not loopback: the kubelet probes from the node).
    const adminPort = Number(config.admin.listen.split(':').at(-1));
    assert.match(config.admin.listen, /^0\.0\.0\.0:/);
    for (const probe of ['startupProbe', 'readinessProbe']) {
      assert.equal(sidecar[probe].httpGet.path, '/readyz', probe);
      assert.equal(probePort(sidecar, sidecar[probe].httpGet.port), adminPort, probe);
    }
    assert.equal(sidecar.livenessProbe.httpGet.path, '/healthz');
    // The startup probe gives the agent time to bootstrap: at least a minute.
    assert.ok(sidecar.startupProbe.periodSeconds * sidecar.startupProbe.failureThreshold >= 60);

    // Hardening.
    const sc = sidecar.securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.ok(sc.runAsUser > 0);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    assert.equal(sc.seccompProfile.type, 'RuntimeDefault');

    // Resources from the benchmark targets: >= 60 MB idle requested, room above 120 MB under load.
    assert.equal(sidecar.resources.requests.memory, '64Mi');
    assert.equal(sidecar.resources.limits.memory, '160Mi');
    assert.ok(sidecar.resources.requests.cpu);

    // Keys: an in-memory emptyDir mounted where identity.dir says.
    const identityMount = sidecar.volumeMounts.find((m: { mountPath: string }) => m.mountPath === config.identity.dir);
    assert.ok(identityMount, `nothing mounted at identity.dir ${config.identity.dir}`);
    const identityVolume = pod.volumes.find((v: { name: string }) => v.name === identityMount.name);
    assert.equal(identityVolume.emptyDir.medium, 'Memory');

    // The projected token for the CA: audience meshward, short-lived, where provision.tokenFile says.
    const tokenVolume = pod.volumes.find((v: K8sObject) => v.projected?.sources?.some((s: K8sObject) => s.serviceAccountToken));
    const token = tokenVolume.projected.sources.find((s: K8sObject) => s.serviceAccountToken).serviceAccountToken;
    assert.equal(token.audience, 'meshward');
    assert.ok(token.expirationSeconds >= 600 && token.expirationSeconds <= 3600, `expirationSeconds ${token.expirationSeconds}`);
    const tokenMount = sidecar.volumeMounts.find((m: { name: string }) => m.name === tokenVolume.name);
    assert.equal(config.identity.provision.tokenFile, `${tokenMount.mountPath}/${token.path}`);
    const bundleMount = sidecar.volumeMounts.find((m: { name: string }) => m.name === 'meshward-bundle');
    assert.equal(config.identity.provision.bundle, `${bundleMount.mountPath}/bundle.crt`);
    assert.equal(config.identity.provision.ca, 'meshward-ca.meshward-system.svc:8443');

    // Shutdown: the app pauses in preStop while endpoints drop it; the sidecar drains after the app
    // exits, and the whole sequence fits in the grace period.
    const app = pod.containers.find((c: { name: string }) => c.name === 'app');
    assert.deepEqual(app.lifecycle.preStop.exec.command.slice(0, 1), ['sleep']);
    const pause = Number(app.lifecycle.preStop.exec.command[1]);
    const drain = Number(/^(\d+)s$/.exec(config.limits.drainTimeout)![1]);
    assert.ok(pause + drain < pod.terminationGracePeriodSeconds, `${pause}s + ${drain}s must fit in ${pod.terminationGracePeriodSeconds}s`);

    // The pod runs as non-root and the app gets no API token (the sidecar has its own projected one).
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(app.securityContext.readOnlyRootFilesystem, true);
    assert.equal(pod.serviceAccountName, find(objects, 'ServiceAccount', 'meshward-example', 'orders').metadata.name);

    // The Service reaches the sidecar's mTLS port, never the app's plaintext one.
    const service = find(objects, 'Service', 'meshward-example', 'orders');
    const inboundPort = Number(config.inbound.listen.split(':').at(-1));
    assert.deepEqual(service.spec.ports.map((p: { targetPort: number }) => p.targetPort), [inboundPort]);
    assert.match(config.inbound.app, /^http:\/\/127\.0\.0\.1:/);
  });

  test(`CA: two replicas on PostgreSQL, a disruption budget, /readyz on the admin port, keys from a Secret (${renderer})`, () => {
    const deployment = find(objects, 'Deployment', 'meshward-system', 'meshward-ca');
    assert.equal(deployment.spec.replicas, 2);
    // The default rolling update: with two replicas maxUnavailable rounds down to 0, one pod replaced at a time.
    assert.equal(deployment.spec.strategy, undefined);
    const pod = deployment.spec.template.spec;
    const ca = pod.containers.find((c: { name: string }) => c.name === 'ca');
    assert.deepEqual(ca.args.slice(0, 6), ['ca', 'serve', '--dir', '/var/lib/meshward', '--listen', '0.0.0.0:8443']);
    // Its serving certificate names the Service the sidecars dial (provision.ca in the example).
    const sans = ca.args.flatMap((a: string, i: number) => (ca.args[i - 1] === '--san' ? [a] : []));
    const service = find(objects, 'Service', 'meshward-system', 'meshward-ca');
    assert.ok(sans.includes(`${service.metadata.name}.${service.metadata.namespace}.svc`), sans.join(' '));

    // The store: MESHWARD_STORE from a Secret made out of band (the DSN carries a password: never rendered).
    const store = ca.env.find((e: { name: string }) => e.name === 'MESHWARD_STORE');
    assert.deepEqual(store.valueFrom, { secretKeyRef: { name: 'meshward-ca-store', key: 'dsn' } });
    assert.equal(objects.filter((o) => o.kind === 'Secret').length, 0);

    // Readiness: /readyz on the port --admin listens on (not loopback: the kubelet probes from the node);
    // liveness only asks whether the process is alive, so a database outage restarts nothing.
    const admin = ca.args[ca.args.indexOf('--admin') + 1];
    assert.match(admin, /^0\.0\.0\.0:\d+$/);
    assert.equal(ca.readinessProbe.httpGet.path, '/readyz');
    assert.equal(probePort(ca, ca.readinessProbe.httpGet.port), Number(admin.split(':')[1]));
    assert.equal(ca.livenessProbe.httpGet.path, '/healthz');
    assert.equal(probePort(ca, ca.livenessProbe.httpGet.port), Number(admin.split(':')[1]));

    // Keys: unpacked from the seed Secret into an in-memory volume at every start; no volume claim at all.
    const dataMount = ca.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/var/lib/meshward');
    const dataVolume = pod.volumes.find((v: { name: string }) => v.name === dataMount.name);
    assert.deepEqual(Object.keys(dataVolume).sort(), ['emptyDir', 'name']);
    assert.equal(dataVolume.emptyDir.medium, 'Memory');
    assert.ok(pod.volumes.some((v: K8sObject) => v.secret?.secretName === 'meshward-ca-seed'));
    const seed = pod.initContainers.find((c: { name: string }) => c.name === 'seed');
    assert.ok(seed.volumeMounts.some((m: { name: string; mountPath: string }) => m.name === dataMount.name && m.mountPath === '/var/lib/meshward'));
    assert.equal(objects.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);

    // The disruption budget selects exactly these pods and keeps one through a drain.
    const pdb = find(objects, 'PodDisruptionBudget', 'meshward-system', 'meshward-ca');
    assert.equal(pdb.spec.minAvailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
    // Spread over nodes: one node failure leaves a replica.
    assert.equal(pod.topologySpreadConstraints[0].topologyKey, 'kubernetes.io/hostname');

    // Hardening of every container, the seeding init container included.
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of [...pod.containers, ...pod.initContainers]) {
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], c.name);
      assert.ok(c.resources.limits.memory, c.name);
    }
    assert.equal(pod.serviceAccountName, find(objects, 'ServiceAccount', 'meshward-system', 'meshward-ca').metadata.name);

    assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
    assert.equal(service.spec.ports[0].port, 8443);

    // NetworkPolicy: selects the CA pods; ingress on 8443 only from pods labelled as sidecars (any
    // namespace), on 9090 from Prometheus; egress only to PostgreSQL's port and to DNS in kube-system.
    const policy = find(objects, 'NetworkPolicy', 'meshward-system', 'meshward-ca');
    assert.deepEqual(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels);
    assert.deepEqual([...policy.spec.policyTypes].sort(), ['Egress', 'Ingress']);
    assert.deepEqual(policy.spec.egress.flatMap((r: K8sObject) => r.ports.map((p: K8sObject) => `${p.protocol}/${p.port}`)).sort(), ['TCP/53', 'TCP/5432', 'UDP/53']);
    assert.equal(policy.spec.ingress.length, 2);
    const [rule, scrape] = policy.spec.ingress;
    assert.deepEqual(rule.ports, [{ port: 8443, protocol: 'TCP' }]);
    assert.deepEqual(rule.from, [{ namespaceSelector: {}, podSelector: { matchLabels: { 'meshward.io/sidecar': 'true' } } }]);
    // ...and the admin port (/metrics) only from Prometheus' pods.
    assert.deepEqual(scrape.ports, [{ port: 9090, protocol: 'TCP' }]);
    assert.deepEqual(scrape.from, [{ namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]);
    // ...and the example workload's pods carry that label, so they get through.
    const workload = find(objects, 'Deployment', 'meshward-example', 'orders');
    assert.equal(workload.spec.template.metadata.labels['meshward.io/sidecar'], 'true');
  });
}

const sqliteRenderings: [string, K8sObject[]][] = [['fallback renderer', kustomize.renderKustomization(deployCheck.SQLITE_OVERLAY_DIR)]];
if (HAVE_KUBECTL) sqliteRenderings.push(['kubectl kustomize', deployCheck.renderWithKubectl(deployCheck.SQLITE_OVERLAY_DIR)!]);

for (const [renderer, objects] of sqliteRenderings) {
  test(`CA on SQLite (overlay): one replica, Recreate, ca.db on the volume, no database egress (${renderer})`, () => {
    const deployment = find(objects, 'Deployment', 'meshward-system', 'meshward-ca');
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    const pod = deployment.spec.template.spec;
    const ca = pod.containers.find((c: { name: string }) => c.name === 'ca');
    assert.deepEqual(ca.env, [{ name: 'MESHWARD_STORE', value: 'sqlite' }]);
    const dataMount = ca.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/var/lib/meshward');
    const dataVolume = pod.volumes.find((v: { name: string }) => v.name === dataMount.name);
    assert.deepEqual(Object.keys(dataVolume).sort(), ['name', 'persistentVolumeClaim']);
    const pvc = find(objects, 'PersistentVolumeClaim', 'meshward-system', 'meshward-ca-data');
    assert.equal(dataVolume.persistentVolumeClaim.claimName, pvc.metadata.name);
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(ca.readinessProbe.httpGet.path, '/readyz');
    // One replica: the budget must let a drain evict it.
    const pdb = find(objects, 'PodDisruptionBudget', 'meshward-system', 'meshward-ca');
    assert.equal(pdb.spec.minAvailable, undefined);
    assert.equal(pdb.spec.maxUnavailable, 1);
    const policy = find(objects, 'NetworkPolicy', 'meshward-system', 'meshward-ca');
    assert.equal(policy.spec.egress, undefined, 'no egress at all');
    assert.ok(policy.spec.policyTypes.includes('Egress'));
    assert.equal(objects.filter((o) => o.kind === 'Secret').length, 0);
  });
}

test('the sidecar component merges into any annotated Deployment and leaves the others alone', () => {
  const objects = kustomize.renderKustomization(join(FIXTURES, 'any-deployment'));
  const injected = find(objects, 'Deployment', 'billing', 'invoices');
  const pod = injected.spec.template.spec;
  // The sidecar goes first, so the Deployment's own init container (a migration) can already use the mesh.
  assert.deepEqual(pod.initContainers.map((c: { name: string }) => c.name), ['meshward', 'migrate']);
  assert.deepEqual(pod.volumes.map((v: { name: string }) => v.name), ['meshward-identity', 'meshward-token', 'meshward-bundle', 'meshward-sidecar', 'cache']);
  assert.deepEqual(pod.containers.map((c: { name: string }) => c.name), ['app']);
  assert.equal(injected.spec.template.metadata.labels.app, 'invoices');
  const untouched = find(objects, 'Deployment', 'billing', 'reports');
  assert.equal(untouched.spec.template.spec.initContainers, undefined);
  assert.equal(untouched.spec.template.metadata.labels['meshward.io/sidecar'], undefined);
});
