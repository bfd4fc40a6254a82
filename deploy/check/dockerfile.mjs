// Checks deploy/Dockerfile offline (no Docker engine needed): parses its stages and enforces the rules the
// image promises in deploy/README.md. Not a general Dockerfile linter: the rules are this image's contract.
//   - multi-stage; the build stage runs `npm ci`, compiles with tsc and prunes dev dependencies;
//   - build and runtime stages share the Node major and the Debian release (glibc), so the native
//     better-sqlite3 addon built in one loads in the other; the runtime is a -slim image;
//   - the runtime stage installs nothing (no package manager, compiler or npm) and copies from the build;
//   - the runtime runs as a numeric, non-root USER (Kubernetes' runAsNonRoot can only verify a number);
//   - ENTRYPOINT is exactly ["node", "/app/bin/meshward.js"].
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DOCKERFILE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'Dockerfile');
export const ENTRYPOINT = ['node', '/app/bin/meshward.js'];

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
export function parseInstructions(text) {
  const out = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (pending === '' && /^\s*(#.*)?$/.test(line)) return;
    if (pending !== '' && /^\s*#/.test(line)) return; // comment lines inside a continuation
    if (pending === '') startLine = i + 1;
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    out.push({ line: startLine, instruction: m[1].toUpperCase(), args: m[2] });
  });
  if (pending !== '') throw new Error('the Dockerfile ends inside a line continuation');
  return out;
}

function substitute(text, args) {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)/g, (_, a, def, b) => args[a ?? b] ?? def ?? '');
}

/** Stages with their base image (ARGs before the first FROM substituted) and their instructions. */
export function parseStages(text) {
  const args = {};
  const stages = [];
  for (const ins of parseInstructions(text)) {
    if (ins.instruction === 'ARG' && stages.length === 0) {
      const [name, value] = ins.args.split(/=(.*)/s, 2);
      args[name.trim()] = value?.trim().replace(/^"(.*)"$/, '$1');
    } else if (ins.instruction === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ image: substitute(m[1], args), name: m[2], line: ins.line, instructions: [] });
    } else if (stages.length === 0) {
      throw new Error(`line ${ins.line}: ${ins.instruction} before the first FROM`);
    } else {
      stages.at(-1).instructions.push(ins);
    }
  }
  return stages;
}

/** node:24-bookworm-slim -> { node: '24', release: 'bookworm', slim: true } */
function describeNodeImage(image) {
  const m = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:\.[\d.]+)?-([a-z]+)(-slim)?(?:@sha256:[0-9a-f]+)?$/.exec(image);
  return m ? { node: m[1], release: m[2], slim: Boolean(m[3]) } : undefined;
}

const BUILD_TOOLS = /\b(apt-get|apt|apk|dnf|yum|microdnf)\b.*\b(install|add)\b|\bnpm\s+(ci|install|i)\b|\b(gcc|g\+\+|make|node-gyp|build-essential|python3?)\b/;

/** Problems with the Dockerfile text, each one sentence; [] when it keeps every rule. */
export function checkDockerfile(text) {
  let stages;
  try {
    stages = parseStages(text);
  } catch (err) {
    return [`Dockerfile: ${err.message}`];
  }
  const problems = [];
  if (stages.length < 2) return ['Dockerfile: must be multi-stage (a build stage and a runtime stage)'];
  const runtime = stages.at(-1);
  const runs = (stage) => stage.instructions.filter((i) => i.instruction === 'RUN').map((i) => i.args).join('\n');
  const build = stages.find((s) => /\bnpm\s+ci\b/.test(runs(s)));
  if (!build || build === runtime) {
    problems.push('Dockerfile: no build stage runs `npm ci`');
  } else {
    const script = runs(build);
    if (!/\btsc\b/.test(script)) problems.push(`Dockerfile: the build stage (line ${build.line}) does not compile with tsc`);
    if (!/\bnpm\s+prune\b[^\n]*--omit=dev/.test(script)) problems.push(`Dockerfile: the build stage (line ${build.line}) does not run \`npm prune --omit=dev\``);
    const b = describeNodeImage(build.image);
    const r = describeNodeImage(runtime.image);
    if (!b || !r) {
      problems.push(`Dockerfile: both stages must use official node images (node:MAJOR-RELEASE[-slim]), got ${build.image} and ${runtime.image}`);
    } else if (b.node !== r.node || b.release !== r.release) {
      problems.push(`Dockerfile: the build stage (${build.image}) and the runtime stage (${runtime.image}) must share the Node major and the Debian release, or the native better-sqlite3 addon will not load`);
    }
    if (r && !r.slim) problems.push(`Dockerfile: the runtime stage should use a -slim image, not ${runtime.image}`);
  }
  for (const ins of runtime.instructions) {
    if (ins.instruction === 'RUN' && BUILD_TOOLS.test(ins.args)) {
      problems.push(`Dockerfile: line ${ins.line}: the runtime stage must not install packages or build tools: RUN ${ins.args}`);
    }
    if (ins.instruction === 'VOLUME') problems.push(`Dockerfile: line ${ins.line}: no VOLUME in the runtime stage (Kubernetes mounts what it needs)`);
  }
  if (!runtime.instructions.some((i) => i.instruction === 'COPY' && /--from=/.test(i.args))) {
    problems.push('Dockerfile: the runtime stage copies nothing from the build stage');
  }
  const user = runtime.instructions.filter((i) => i.instruction === 'USER').at(-1);
  if (!user) {
    problems.push('Dockerfile: the runtime stage has no USER (it would run as root)');
  } else {
    const m = /^(\d+)(?::(\d+))?$/.exec(user.args.trim());
    if (!m) problems.push(`Dockerfile: line ${user.line}: USER must be a numeric uid[:gid], not "${user.args}" (runAsNonRoot cannot verify a name)`);
    else if (Number(m[1]) === 0 || (m[2] !== undefined && Number(m[2]) === 0)) problems.push(`Dockerfile: line ${user.line}: USER ${user.args} is root`);
  }
  const entry = runtime.instructions.filter((i) => i.instruction === 'ENTRYPOINT').at(-1);
  let entryArgs;
  try {
    entryArgs = entry ? JSON.parse(entry.args) : undefined;
  } catch {
    entryArgs = undefined;
  }
  if (!Array.isArray(entryArgs) || entryArgs.length !== ENTRYPOINT.length || entryArgs.some((a, i) => a !== ENTRYPOINT[i])) {
    problems.push(`Dockerfile: the runtime ENTRYPOINT must be the exec form ${JSON.stringify(ENTRYPOINT)}${entry ? `, not ${entry.args}` : ''}`);
  }
  return problems;
}

export function checkDockerfileFile(file = DOCKERFILE) {
  return checkDockerfile(readFileSync(file, 'utf8'));
}
