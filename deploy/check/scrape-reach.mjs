// The PodMonitors of deploy/observability must be able to reach what they scrape. For every pod the rendered
// manifests run that a PodMonitor selects, each scraped port (a container port's name, resolved to its
// number) must be admitted by the NetworkPolicies that isolate the pod for ingress; otherwise Prometheus
// finds the target and every scrape times out, which no schema check notices.
// NetworkPolicy semantics followed here: a pod selected by any policy with Ingress in its policyTypes is
// isolated, and a connection is allowed when any ingress rule of any such policy allows it; a rule without
// `ports` allows every port; a port is matched by number or by the container port's name, protocol TCP by
// default. Who may connect (`from`) is not judged: which pods Prometheus runs as is the cluster's choice.
// Selectors are matchLabels (all these manifests use); PodMonitor namespaces: `any: true`, `matchNames`,
// else the PodMonitor's own namespace.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { POD_MONITORS } from './observability.mjs';

const matches = (selector, labels) => Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v);

/** The pod template of a workload object, or undefined. */
function podTemplate(o) {
  if (o.kind === 'Pod') return { metadata: o.metadata, spec: o.spec };
  if (o.kind === 'CronJob') return o.spec?.jobTemplate?.spec?.template;
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(o.kind)) return o.spec?.template;
  return undefined;
}

function monitorsNamespace(monitor, namespace) {
  const ns = monitor.spec?.namespaceSelector;
  if (ns?.any === true) return true;
  if (Array.isArray(ns?.matchNames)) return ns.matchNames.includes(namespace);
  return (monitor.metadata?.namespace ?? 'default') === namespace;
}

function admits(policy, port) {
  if (!(policy.spec?.policyTypes ?? ['Ingress']).includes('Ingress')) return true;
  return (policy.spec?.ingress ?? []).some((rule) => !Array.isArray(rule.ports) || rule.ports.length === 0
    || rule.ports.some((p) => (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP')
      && (p.port === undefined || p.port === port.containerPort || (port.name !== undefined && p.port === port.name)
        || (typeof p.port === 'number' && typeof p.endPort === 'number' && port.containerPort >= p.port && port.containerPort <= p.endPort))));
}

/** Problems, one sentence each, for rendered objects and parsed PodMonitors; [] when every scrape can get through. */
export function checkScrapeReach(objects, podMonitors) {
  const problems = [];
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  for (const workload of objects) {
    const pod = podTemplate(workload);
    if (!pod) continue;
    const namespace = workload.metadata?.namespace ?? 'default';
    const labels = pod.metadata?.labels ?? {};
    const isolating = policies.filter((p) => (p.metadata?.namespace ?? 'default') === namespace && matches(p.spec?.podSelector, labels)
      && (p.spec?.policyTypes ?? ['Ingress']).includes('Ingress'));
    const ports = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].flatMap((c) => c.ports ?? []);
    for (const monitor of podMonitors) {
      if (!matches(monitor.spec?.selector, labels) || !monitorsNamespace(monitor, namespace)) continue;
      for (const endpoint of monitor.spec?.podMetricsEndpoints ?? []) {
        const where = `PodMonitor ${monitor.metadata?.name} scrapes port ${endpoint.port} of ${workload.kind} ${namespace}/${workload.metadata?.name}`;
        const port = ports.find((p) => p.name === endpoint.port);
        if (!port) {
          problems.push(`${where}, which has no container port of that name`);
          continue;
        }
        if (isolating.length > 0 && !isolating.some((p) => admits(p, port))) {
          problems.push(`${where} (${port.containerPort}), but NetworkPolicy ${isolating.map((p) => p.metadata?.name).join(', ')} admits no ingress to that port: add an ingress rule for Prometheus`);
        }
      }
    }
  }
  return problems;
}

/** The PodMonitors of deploy/observability/pod-monitors.yaml. */
export function loadPodMonitors(file = POD_MONITORS) {
  return YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()).filter((o) => o?.kind === 'PodMonitor');
}
