// The `workers` setting is validated like every other field: 0, negative, fractional and non-numeric
// values are refused with a message naming `workers` (exit 2 from the binary, for the config field and
// for the --workers override alike); a positive integer and "auto" (one per core) are accepted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { isMeshwardError } from '../../src/errors.js';
import { parseSidecarConfig } from '../../src/sidecar/config.js';
import { runCli } from '../support/cli.js';
import { runSidecarToExit, writeSidecarConfig } from '../support/sidecar.js';
import { tempDir } from '../support/temp-dir.js';

let tmp: string;
let removeTmp = (): void => {};
const base = {
  identity: { dir: './identity' },
  inbound: { listen: '127.0.0.1:0', app: 'http://127.0.0.1:8080' },
  policy: './policy.yaml',
  admin: { listen: '127.0.0.1:0' },
};

before(() => {
  ({ dir: tmp, cleanup: removeTmp } = tempDir());
  writeFileSync(join(tmp, 'policy.yaml'), 'grants: []\nroutes: []\n');
});

after(() => removeTmp());

// [YAML text of the value, why it is refused]
const refused: [string, string][] = [
  ['0', 'zero workers would serve nothing'],
  ['-1', 'negative'],
  ['two', 'a word other than auto'],
  ['1.5', 'fractional'],
  ['"0"', 'a quoted zero'],
  ['""', 'empty'],
  ['null', 'empty value (`workers:` with nothing after it)'],
  ['[2]', 'a list'],
  ['AUTO', 'auto is lowercase'],
];

for (const [value, why] of refused) {
  test(`parser refuses workers: ${value} (${why})`, () => {
    const doc = { ...base, workers: parse(value) as unknown };
    assert.throws(
      () => parseSidecarConfig(doc, 'sidecar.yaml'),
      (err: unknown) => isMeshwardError(err) && err.code === 'usage' && err.message === 'sidecar.yaml: workers: must be a positive integer or "auto"',
    );
  });
}

const accepted: [string, number][] = [
  ['1', 1],
  ['4', 4],
  ['"2"', 2],
  ['auto', availableParallelism()],
];

for (const [value, expected] of accepted) {
  test(`parser accepts workers: ${value} as ${expected}`, () => {
    assert.equal(parseSidecarConfig({ ...base, workers: parse(value) as unknown }, 'sidecar.yaml').workers, expected);
  });
}

test('workers defaults to 1 (one process, as before the setting existed)', () => {
  assert.equal(parseSidecarConfig(base, 'sidecar.yaml').workers, 1);
});

for (const value of ['0', '-1', 'two', '1.5']) {
  test(`the binary exits 2 on workers: ${value} in the config file`, async () => {
    const path = join(tmp, 'bad-workers.yaml');
    writeFileSync(path, `${readFileSync(writeSidecarConfig(tmp, base), 'utf8')}workers: ${value}\n`);
    const r = await runSidecarToExit(path, 60_000);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `meshward: error: ${path}: workers: must be a positive integer or "auto"\n`);
  });
}

for (const value of ['0', 'two', '1.5']) {
  test(`the binary exits 2 on --workers ${value}`, async () => {
    const path = writeSidecarConfig(tmp, base);
    const r = await runCli(['sidecar', '--config', path, '--workers', value], { timeoutMs: 60_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'meshward: error: --workers: must be a positive integer or "auto"\n');
  });
}

