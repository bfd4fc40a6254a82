// Idempotence: injecting the output of `meshward inject` again prints the very same text, whether the
// config is generated or named, read from a file or from standard input; and an input that already
// carries the sidecar (applied earlier with the same options) comes back unchanged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { OTHERS, WORKLOADS, inject, parseAll } from './workloads.js';
import { tempDir } from '../support/temp-dir.js';

const ALL = [OTHERS, ...Object.values(WORKLOADS)].join('---\n');
const { dir, cleanup: removeDir } = tempDir('meshward-inject-');
after(() => removeDir());

for (const [name, args] of [
  ['a generated config', ['--trust-domain', 'example.org']],
  ['a named ConfigMap and another image', ['--config-map', 'shop-sidecar', '--image', 'registry.example.com/meshward:0.1.0']],
] as const) {
  test(`inject twice with ${name}: the second run prints the first run's output`, async () => {
    const once = await inject(ALL, args);
    assert.equal(once.code, 0, once.stderr);
    const file = join(dir, `once-${name.replaceAll(' ', '-')}.yaml`);
    writeFileSync(file, once.stdout);
    const twice = await runCli(['inject', '-f', file, ...args]);
    assert.equal(twice.code, 0, twice.stderr);
    assert.equal(twice.stdout, once.stdout);
    // Each workload has exactly one sidecar and one of each meshward volume.
    for (const o of parseAll(twice.stdout)) {
      const spec = o.kind === 'Pod' ? o.spec : o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.spec : o.spec?.template?.spec;
      if (!spec) continue;
      assert.equal(spec.initContainers.filter((c: { name: string }) => c.name === 'meshward').length, 1);
      assert.equal(new Set(spec.volumes.map((v: { name: string }) => v.name)).size, spec.volumes.length);
    }
  });
}

test('inject: a newer image replaces the sidecar of an injected workload instead of adding a second', async () => {
  const once = await inject(WORKLOADS.Deployment!);
  const upgraded = await inject(once.stdout, ['--trust-domain', 'example.org', '--image', 'meshward:0.2.0']);
  assert.equal(upgraded.code, 0, upgraded.stderr);
  const [configMap, deployment] = parseAll(upgraded.stdout);
  assert.equal(configMap!.kind, 'ConfigMap', 'the generated ConfigMap from the first run passes through');
  const init = deployment!.spec.template.spec.initContainers;
  assert.deepEqual(init.map((c: { name: string; image: string }) => `${c.name}=${c.image}`), ['meshward=meshward:0.2.0']);
  assert.equal(parseAll(upgraded.stdout).length, 2, 'no second ConfigMap is generated for an injected workload');
});
