// Real manifests for the inject and webhook tests (one of each workload kind meshward injects), and how to
// find a workload's pod template in parsed output.
import YAML from 'yaml';
import { runCli, type CommandResult } from '../support/cli.js';

const CONTAINERS = `
      containers:
        - name: app
          image: registry.example.com/shop/orders:1.4.2
          ports:
            - containerPort: 8080
          resources:
            requests: {cpu: 20m, memory: 32Mi}`;

const TEMPLATE = (indent: string) =>
  `${indent}metadata:\n${indent}  labels:\n${indent}    app.kubernetes.io/name: orders\n${indent}spec:${CONTAINERS.replaceAll('\n      ', `\n${indent}  `)}`;

const SELECTOR = 'selector:\n    matchLabels:\n      app.kubernetes.io/name: orders';

/** kind → a manifest of it; every one has one app container listening on 8080. */
export const WORKLOADS: Record<string, string> = {
  Deployment: `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: orders\n  namespace: shop\nspec:\n  replicas: 2\n  ${SELECTOR}\n  template:\n${TEMPLATE('    ')}\n`,
  StatefulSet: `apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: ledger\nspec:\n  serviceName: ledger\n  ${SELECTOR}\n  template:\n${TEMPLATE('    ')}\n`,
  DaemonSet: `apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: node-agent\nspec:\n  ${SELECTOR}\n  template:\n${TEMPLATE('    ')}\n`,
  ReplicaSet: `apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: legacy\nspec:\n  ${SELECTOR}\n  template:\n${TEMPLATE('    ')}\n`,
  Job: `apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  backoffLimit: 2\n  template:\n${TEMPLATE('    ').replace('spec:', 'spec:\n      restartPolicy: Never')}\n`,
  CronJob: `apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: "0 3 * * *"\n  jobTemplate:\n    spec:\n      template:\n${TEMPLATE('        ').replace('spec:', 'spec:\n          restartPolicy: OnFailure')}\n`,
  Pod: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  labels:\n    app.kubernetes.io/name: orders\nspec:${CONTAINERS.replaceAll('\n      ', '\n  ')}\n`,
};

/** Resources that are not workloads: they must come out equal in content. */
export const OTHERS = `apiVersion: v1
kind: Service
metadata:
  name: orders
spec:
  selector: {app.kubernetes.io/name: orders}
  ports:
    - {name: mesh, port: 8443, targetPort: 8443}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: "3"          # a string that looks like a number
  enabled: "true"
`;

export type K8s = Record<string, any>;

/** The pod template of a workload object (the object itself for a Pod). */
export function podTemplate(obj: K8s): K8s {
  switch (obj.kind) {
    case 'Pod': return obj;
    case 'CronJob': return obj.spec.jobTemplate.spec.template;
    default: return obj.spec.template;
  }
}

export function parseAll(text: string): K8s[] {
  return YAML.parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o !== null);
}

/** `meshward inject -f - ARGS` with `input` on standard input. */
export function inject(input: string, args: readonly string[] = ['--trust-domain', 'example.org']): Promise<CommandResult> {
  return runCli(['inject', '-f', '-', ...args], { input });
}
