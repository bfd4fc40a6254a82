// Loads the deploy check (plain ESM under deploy/check/, run by `make deploy-check` without a build) into
// the tests, typed. The modules are found from the repository root, which holds deploy/check/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';

/** A rendered Kubernetes object, loosely typed: the tests read fields by path. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [field: string]: any };

export interface CheckResult { objects: K8sObject[]; problems: string[]; notes: string[] }

export interface DeployCheck {
  MANIFEST_DIR: string;
  SQLITE_OVERLAY_DIR: string;
  CHECKED_DIRS: string[];
  runCheck(opts?: { dir?: string; renderer?: 'auto' | 'kubectl' | 'builtin'; kubectl?: string }): CheckResult;
  renderWithKubectl(dir: string, kubectl?: string): K8sObject[] | undefined;
  compareRenderings(a: K8sObject[], b: K8sObject[], nameA: string, nameB: string): string | undefined;
}
export interface Kustomize {
  renderKustomization(dir: string): K8sObject[];
  nameHash(configMap: { data?: Record<string, string> }): string;
}
export interface Validate {
  validateObject(object: unknown): string[];
  validateObjects(objects: unknown[]): string[];
}
export interface Dockerfile {
  DOCKERFILE: string;
  checkDockerfile(text: string): string[];
  parseStages(text: string): { image: string; name?: string; line: number; instructions: { line: number; instruction: string; args: string }[] }[];
}

export interface Observability {
  OBSERVABILITY_DIR: string;
  DASHBOARD: string;
  RULES: string;
  checkDashboard(dashboard: unknown): string[];
  checkPrometheusRule(rule: unknown): string[];
  checkPodMonitor(monitor: unknown): string[];
  checkObservabilityFiles(files?: { dashboard?: string; rules?: string; podMonitors?: string }): string[];
  observabilityExpressions(files?: { dashboard?: string; rules?: string }): { where: string; expr: string }[];
}

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'deploy', 'check', 'deploy-check.mjs'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('deploy/check/deploy-check.mjs not found above the test');
    dir = parent;
  }
}

export const REPO_ROOT = findRepoRoot();
export const FIXTURES = join(REPO_ROOT, 'test', 'deploy', 'fixtures');
export const CHECK_SCRIPT = join(REPO_ROOT, 'deploy', 'check', 'deploy-check.mjs');

async function load<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(join(REPO_ROOT, 'deploy', 'check', name)).href)) as T;
}

export const deployCheck = await load<DeployCheck>('deploy-check.mjs');
export const kustomize = await load<Kustomize>('kustomize.mjs');
export const validate = await load<Validate>('validate.mjs');
export const dockerfile = await load<Dockerfile>('dockerfile.mjs');
export const observability = await load<Observability>('observability.mjs');

/** Whether `kubectl kustomize` can run here (optional: the fallback renderer covers its absence); MESHWARD_KUBECTL as in the check. */
export const HAVE_KUBECTL = spawnSync(process.env.MESHWARD_KUBECTL || 'kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
