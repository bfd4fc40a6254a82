// `meshward sidecar --config FILE [--workers N] [--debug]` is read without yargs (src/cli/sidecar-arguments.ts,
// to keep the parser out of the resident sidecar); every other shape goes to yargs. Both paths must
// answer a user alike: the table pins which shapes take the short path, and real runs of the CLI show
// the refusals of either path unchanged (one line, the same words, the same exit status).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { plainSidecarArguments } from '../../src/cli/sidecar-arguments.js';
import { runCli } from '../support/cli.js';
import { tempDir, type TempDir } from '../support/temp-dir.js';

let tmp: TempDir;
before(() => {
  tmp = tempDir('meshward-sidecar-args-');
});
after(() => tmp.cleanup());

// [argv, what the short path reads (undefined: left to yargs)]
const shapes: [string[], ReturnType<typeof plainSidecarArguments>][] = [
  [['sidecar', '--config', 'a.yaml'], { config: 'a.yaml', debug: false }],
  [['sidecar', '--config=a.yaml'], { config: 'a.yaml', debug: false }],
  [['sidecar', '--config', 'a.yaml', '--workers', 'auto'], { config: 'a.yaml', workers: 'auto', debug: false }],
  [['sidecar', '--workers=2', '--debug', '--config', 'a b.yaml'], { config: 'a b.yaml', workers: '2', debug: true }],
  [['sidecar'], undefined],
  [['sidecar', '--config'], undefined],
  [['sidecar', '--config='], undefined],
  [['sidecar', '--config', '--workers', '2'], undefined],
  [['sidecar', '--workers', '2'], undefined],
  [['sidecar', '--config', 'a', '--config', 'b'], undefined],
  [['sidecar', '--config', 'a', '--debug', '--debug'], undefined],
  [['sidecar', '--config', 'a', '--help'], undefined],
  [['sidecar', '--config', 'a', '-h'], undefined],
  [['sidecar', '--config', 'a', 'extra'], undefined],
  [['sidecar', '--bogus', 'x', '--config', 'a'], undefined],
  [['--debug', 'sidecar', '--config', 'a'], undefined],
  [['cert', '--config', 'a'], undefined],
];

for (const [argv, expected] of shapes) {
  test(`argv ${JSON.stringify(argv)} → ${expected === undefined ? 'the full parser' : 'the short path'}`, () => {
    assert.deepEqual(plainSidecarArguments(argv), expected);
  });
}

// [argv (FILE = a path in the temp dir that does not exist), exit status, the one stderr line]
const refusals: [string[], number, RegExp][] = [
  // the short path
  [['sidecar', '--config', 'FILE'], 2, /^meshward: error: \S+missing\.yaml: cannot read the config file \(ENOENT\): no such file; pass an existing file to --config$/],
  [['sidecar', '--config=FILE', '--workers', '2'], 2, /^meshward: error: \S+missing\.yaml: cannot read the config file \(ENOENT\)/],
  // yargs
  [['sidecar'], 2, /^meshward: error: Missing required argument: config \(see meshward --help\)$/],
  [['sidecar', '--config', 'FILE', '--bogus', 'x'], 2, /^meshward: error: Unknown argument: bogus \(see meshward --help\)$/],
  // a flag without its value is a usage error (exit 2), as everywhere in the CLI
  [['sidecar', '--config'], 2, /^meshward: error: Not enough arguments following: config \(see meshward --help\)$/],
];

for (const [argv, code, line] of refusals) {
  test(`meshward ${argv.join(' ')} is refused with exit ${code}`, async () => {
    const file = tmp.path('missing.yaml');
    const r = await runCli(argv.map((a) => a.replace('FILE', file)), { timeoutMs: 60_000 });
    assert.equal(r.code, code, `stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
    assert.match(lines[0]!, line);
  });
}

test('meshward sidecar --help still prints the full help (yargs)', async () => {
  const r = await runCli(['sidecar', '--config', 'x.yaml', '--help'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /--config\s+sidecar YAML configuration file/);
  assert.match(r.stdout, /--workers/);
});
