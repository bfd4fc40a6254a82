// deploy/Dockerfile checked offline (no Docker engine here): its stages parsed, and the rules it promises
// enforced: multi-stage with npm ci + tsc + prune in the build, the same Node major and glibc release in
// both stages (better-sqlite3 is a native addon), no build tools at run time, a numeric non-root USER,
// ENTRYPOINT node /app/bin/meshward.js. A broken Dockerfile proves each rule can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, REPO_ROOT, dockerfile } from './check-module.js';

const text = readFileSync(dockerfile.DOCKERFILE, 'utf8');

test('deploy/Dockerfile keeps every rule', () => {
  assert.deepEqual(dockerfile.checkDockerfile(text), []);
});

test('deploy/Dockerfile: a build stage and a slim runtime stage on the same Node and Debian release', () => {
  const stages = dockerfile.parseStages(text);
  assert.equal(stages.length, 2);
  const [build, runtime] = stages;
  assert.equal(build!.image, 'node:24-bookworm');
  assert.equal(runtime!.image, 'node:24-bookworm-slim');
  const runtimeCopies = runtime!.instructions.filter((i) => i.instruction === 'COPY').map((i) => i.args);
  // The runtime gets only what runs: production node_modules, the compiled CLI, its entry point and the proto.
  assert.deepEqual(runtimeCopies.map((a) => a.split(/\s+/).at(-1)), ['./package.json', './node_modules', './bin', './proto', './dist/src']);
  assert.ok(runtimeCopies.every((a) => a.startsWith('--from=build ')));
  const user = runtime!.instructions.filter((i) => i.instruction === 'USER').at(-1);
  assert.equal(user?.args, '10001:10001');
});

test('the build context is the repo root, narrowed by .dockerignore to what the build copies', () => {
  const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.equal(ignore[0], '*');
  const allowed = ignore.slice(1).map((l) => l.replace(/^!/, ''));
  const copied = dockerfile.parseStages(text)[0]!.instructions
    .filter((i) => i.instruction === 'COPY')
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  assert.deepEqual([...new Set(copied)].sort(), [...allowed].sort());
});

test('a broken Dockerfile fails the check, one problem per broken rule', () => {
  const problems = dockerfile.checkDockerfile(readFileSync(join(FIXTURES, 'Dockerfile.broken'), 'utf8'));
  const expected = [
    /does not run `npm prune --omit=dev`/,
    /\(node:24-bookworm\) and the runtime stage \(node:24-alpine\) must share the Node major and the Debian release/,
    /runtime stage should use a -slim image/,
    /line 9: the runtime stage must not install packages or build tools: RUN apk add/,
    /line 11: USER must be a numeric uid\[:gid\], not "root"/,
    /ENTRYPOINT must be the exec form \["node","\/app\/bin\/meshward.js"\], not node \/app\/bin\/meshward.js/,
  ];
  assert.equal(problems.length, expected.length, problems.join('\n'));
  expected.forEach((re, i) => assert.match(problems[i]!, re));
});

test('USER 0 and a missing USER are refused; a single stage is refused', () => {
  const withUser = (user: string) => text.replace('USER 10001:10001', user);
  assert.match(dockerfile.checkDockerfile(withUser('USER 0:0')).join('\n'), /USER 0:0 is root/);
  assert.match(dockerfile.checkDockerfile(withUser('')).join('\n'), /the runtime stage has no USER \(it would run as root\)/);
  assert.deepEqual(dockerfile.checkDockerfile('FROM node:24-bookworm-slim\nUSER 10001\nENTRYPOINT ["node", "/app/bin/meshward.js"]\n'),
    ['Dockerfile: must be multi-stage (a build stage and a runtime stage)']);
});
