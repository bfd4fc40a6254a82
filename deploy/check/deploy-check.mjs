#!/usr/bin/env node
// `make deploy-check`: renders deploy/kubernetes (the CA on PostgreSQL and the example) and the SQLite
// overlay deploy/kubernetes/ca-sqlite, and validates every object offline against the pinned Kubernetes schemas, and checks that every port the PodMonitors scrape gets through the NetworkPolicies (scrape-reach.mjs), deploy/Dockerfile's rules (dockerfile.mjs) and the shape of deploy/observability/ (observability.mjs). Renders with `kubectl kustomize` when kubectl is installed, and also with the repo's
// own renderer (kustomize.mjs), and fails if the two disagree, so the fallback that machines without
// kubectl use stays exactly what kubectl renders. Without kubectl, the fallback alone.
//
//   node deploy/check/deploy-check.mjs [--renderer auto|kubectl|builtin] [DIR]   (DIR: only that kustomization)
//
// Exit 0: every object is valid. Exit 1: a problem (each printed on its own line). Exit 2: usage error.
// The kubectl binary can be chosen with MESHWARD_KUBECTL (default: `kubectl` on PATH).
import { execFileSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { compareObjects, renderKustomization } from './kustomize.mjs';
import { checkDockerfileFile, DOCKERFILE } from './dockerfile.mjs';
import { checkObservabilityFiles, OBSERVABILITY_DIR } from './observability.mjs';
import { checkScrapeReach, loadPodMonitors } from './scrape-reach.mjs';
import { loadSchemas, objectLabel, validateObjects } from './validate.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const MANIFEST_DIR = resolve(here, '..', 'kubernetes');
/** The single-replica SQLite layout, an overlay of kubernetes/ca that the default rendering does not include. */
export const SQLITE_OVERLAY_DIR = resolve(MANIFEST_DIR, 'ca-sqlite');
/** What `make deploy-check` validates when no DIR is given. */
export const CHECKED_DIRS = [MANIFEST_DIR, SQLITE_OVERLAY_DIR];

/** Renders with `kubectl kustomize`; undefined when kubectl is not installed. */
export function renderWithKubectl(dir, kubectl = process.env.MESHWARD_KUBECTL || 'kubectl') {
  let out;
  try {
    out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`kubectl kustomize ${dir} failed: ${String(err.stderr || err.message).trim()}`);
  }
  return YAML.parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o !== null);
}

/** The first difference between two renderings, as a sentence; undefined when they are the same. */
export function compareRenderings(a, b, nameA, nameB) {
  const key = (o) => `${o.apiVersion}/${objectLabel(o)}`;
  const sortedA = [...a].sort(compareObjects);
  const sortedB = [...b].sort(compareObjects);
  const keysA = sortedA.map(key);
  const keysB = sortedB.map(key);
  const onlyA = keysA.filter((k) => !keysB.includes(k));
  const onlyB = keysB.filter((k) => !keysA.includes(k));
  if (onlyA.length || onlyB.length) {
    return `${nameA} and ${nameB} render different objects: only in ${nameA}: ${onlyA.join(', ') || 'none'}; only in ${nameB}: ${onlyB.join(', ') || 'none'}`;
  }
  for (let i = 0; i < sortedA.length; i++) {
    if (!isDeepStrictEqual(sortedA[i], sortedB[i])) {
      return `${nameA} and ${nameB} render ${keysA[i]} differently:\n${nameA}:\n${YAML.stringify(sortedA[i])}${nameB}:\n${YAML.stringify(sortedB[i])}`;
    }
  }
  return undefined;
}

/**
 * Renders and validates. Returns what was done and every problem; never throws for a problem in the
 * manifests (a renderer failure is reported as a problem too).
 */
export function runCheck({ dir = MANIFEST_DIR, renderer = 'auto', kubectl } = {}) {
  const problems = [];
  const notes = [];
  let objects = [];
  try {
    const viaKubectl = renderer === 'builtin' ? undefined : renderWithKubectl(dir, kubectl);
    if (renderer === 'kubectl' && viaKubectl === undefined) throw new Error('kubectl is not installed (use --renderer auto or builtin)');
    if (viaKubectl !== undefined) {
      objects = viaKubectl;
      notes.push(`rendered ${dir} with kubectl kustomize: ${objects.length} objects`);
      if (renderer === 'auto') {
        const builtin = renderKustomization(dir);
        const difference = compareRenderings(viaKubectl, builtin, 'kubectl kustomize', 'the fallback renderer');
        if (difference) problems.push(difference);
        else notes.push('the fallback renderer (deploy/check/kustomize.mjs) renders the same objects');
      }
    } else {
      objects = renderKustomization(dir);
      notes.push(`rendered ${dir} with the fallback renderer (${renderer === 'builtin' ? 'as asked' : 'kubectl is not installed'}): ${objects.length} objects`);
    }
  } catch (err) {
    problems.push(`cannot render ${dir}: ${err.message}`);
    return { objects, problems, notes };
  }
  const schemas = loadSchemas();
  problems.push(...validateObjects(objects, schemas));
  notes.push(`validated against ${schemas.source} schemas (strict: unknown fields, types, required fields)`);
  try {
    const reach = checkScrapeReach(objects, loadPodMonitors());
    problems.push(...reach);
    if (reach.length === 0) notes.push("every port deploy/observability's PodMonitors scrape here is admitted by the NetworkPolicies");
  } catch (err) {
    problems.push(`cannot read the PodMonitors: ${err.message}`);
  }
  return { objects, problems, notes };
}

function main(argv) {
  let renderer = 'auto';
  let dirs = CHECKED_DIRS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--renderer') renderer = argv[++i];
    else if (arg.startsWith('--renderer=')) renderer = arg.slice('--renderer='.length);
    else if (arg === '-h' || arg === '--help') {
      console.log('usage: node deploy/check/deploy-check.mjs [--renderer auto|kubectl|builtin] [DIR]');
      return 0;
    } else if (arg.startsWith('-')) {
      console.error(`deploy-check: error: unknown option ${arg} (usage: [--renderer auto|kubectl|builtin] [DIR])`);
      return 2;
    } else dirs = [resolve(arg)];
  }
  if (!['auto', 'kubectl', 'builtin'].includes(renderer)) {
    console.error(`deploy-check: error: --renderer must be auto, kubectl or builtin, not "${renderer}"`);
    return 2;
  }
  let failed = false;
  for (const dir of dirs) {
    const { objects, problems, notes } = runCheck({ dir, renderer });
    for (const n of notes) console.log(`deploy-check: ${n}`);
    if (problems.length) {
      for (const p of problems) console.error(`deploy-check: ${p}`);
      console.error(`deploy-check: FAILED: ${problems.length} problem(s) in ${objects.length} objects`);
      failed = true;
    } else {
      console.log(`deploy-check: OK: ${objects.length} objects valid (${objects.map(objectLabel).join(', ')})`);
    }
  }
  const dockerProblems = checkDockerfileFile();
  for (const p of dockerProblems) console.error(`deploy-check: ${p}`);
  if (dockerProblems.length) {
    console.error(`deploy-check: FAILED: ${dockerProblems.length} problem(s) in ${DOCKERFILE}`);
    return 1;
  }
  console.log(`deploy-check: ${DOCKERFILE}: multi-stage, numeric non-root USER, no build tools at run time, same libc in both stages`);
  const observabilityProblems = checkObservabilityFiles();
  for (const p of observabilityProblems) console.error(`deploy-check: ${p}`);
  if (observabilityProblems.length) {
    console.error(`deploy-check: FAILED: ${observabilityProblems.length} problem(s) in ${OBSERVABILITY_DIR}`);
    return 1;
  }
  console.log(`deploy-check: ${OBSERVABILITY_DIR}: the dashboard's panels all have queries, every alert has expr, severity and a summary, the PodMonitors name a port`);
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}

