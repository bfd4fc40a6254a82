// The sidecar caps V8's young generation at 8 MB (src/sidecar/memory.ts) so a burst of handshakes or
// load does not leave 32 MB of new space resident, unless the operator sized it with node's own flags
// (on the command line or in NODE_OPTIONS): then theirs apply. Each case runs a real node process that
// keeps objects alive across scavenges (what makes V8 grow new space) in small synchronous steps, as a
// server's callbacks are, and reports the largest new space it saw.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, runCommand } from '../support/cli.js';
import { YOUNG_GENERATION_CAP } from '../../src/sidecar/memory.js';

let tmp: string;
let script: string;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'meshward-young-gen-'));
  script = join(tmp, 'survivors.mjs');
  const memory = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'sidecar', 'memory.js')).href;
  writeFileSync(script, `import v8 from 'node:v8';
import { capYoungGeneration } from ${JSON.stringify(memory)};
const applied = capYoungGeneration();
const kept = [];
let max = 0;
for (let round = 0; round < 800; round++) {
  await new Promise((resolve) => setImmediate(resolve));
  const batch = [];
  for (let i = 0; i < 2500; i++) batch.push({ i, s: 'x' + i });
  kept.push(batch);
  if (kept.length > 160) kept.shift();
  max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
}
console.log(JSON.stringify({ applied, newSpaceMb: max / 1048576 }));
`);
});

after(() => rmSync(tmp, { recursive: true, force: true }));

async function run(nodeArgs: string[], nodeOptions?: string): Promise<{ applied: boolean; newSpaceMb: number }> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (nodeOptions !== undefined) env.NODE_OPTIONS = nodeOptions;
  const r = await runCommand(process.execPath, [...nodeArgs, script], { env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { applied: boolean; newSpaceMb: number };
}

test('by default the young generation stops growing at the cap under surviving objects', async () => {
  const r = await run([]);
  assert.equal(r.applied, true);
  assert.ok(r.newSpaceMb <= YOUNG_GENERATION_CAP / 1048576, `new space grew to ${r.newSpaceMb} MB`);
});

// [how the operator sized it, node arguments, NODE_OPTIONS, the least new space (MB) that shows their setting applied]
const operatorChoices: [string, string[], string | undefined, number][] = [
  ['--semi-space-growth-factor on the command line', ['--semi-space-growth-factor=2'], undefined, 16],
  ['--max-semi-space-size in NODE_OPTIONS', [], '--max-semi-space-size=4', 4],
  ['--max_semi_space_size (underscores) on the command line', ['--max_semi_space_size=4'], undefined, 4],
];

for (const [name, args, nodeOptions, leastMb] of operatorChoices) {
  test(`the operator's ${name} is left alone`, async () => {
    const r = await run(args, nodeOptions);
    assert.equal(r.applied, false);
    assert.ok(r.newSpaceMb >= leastMb, `new space stayed at ${r.newSpaceMb} MB: the operator's flag was overridden`);
  });
}
