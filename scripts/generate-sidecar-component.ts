// Writes the kustomize component's sidecar patch from src/kubernetes/sidecar-spec.ts (the one source of
// truth for the sidecar container). Run after changing the spec: `node dist/scripts/generate-sidecar-component.js`.
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPONENT_PATCH_FILE, sidecarComponentPatch } from '../src/kubernetes/sidecar-component.js';

// This file runs as dist/scripts/generate-sidecar-component.js.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
writeFileSync(join(root, COMPONENT_PATCH_FILE), sidecarComponentPatch());
console.log(`wrote ${COMPONENT_PATCH_FILE}`);
