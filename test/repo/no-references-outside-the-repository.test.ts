// Code, messages, tests and manifests cite only what the repository holds (docs/…), never a document a
// reader of the repository cannot open: the team's design file, a folder beside the repository, or a
// relative path that climbs above the repository root. Every tracked text file of the code folders is
// read, this one included: its samples are assembled at run time so that it passes its own check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { REPO_ROOT } from '../support/cli.js';

const FOLDERS = ['src', 'test', 'scripts', 'bench', 'deploy', 'proto', 'bin', '.ci'];

/** Names of documents that live outside the repository (written so this file does not name them itself). */
const OUTSIDE: [RegExp, string][] = [
  [/\bdesign\.md\b/i, 'the design file, which is not in the repository: cite the docs/ page instead'],
  [/(^|[^\w.])\.\.\/(shared|team)\b/, 'a folder beside the repository'],
  [/\/work\/(shared|team|wt)\b/, "a path of one machine's working folders"],
];

/** Relative paths that climb (`../x`, `../../x`): each is checked against the file's own folder. */
const CLIMB = /(?:^|[\s'"`(=:,])((?:\.\.\/)+)[\w.-]/g;

interface Finding {
  file: string;
  line: number;
  why: string;
}

function findings(file: string, text: string): Finding[] {
  const out: Finding[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    for (const [pattern, why] of OUTSIDE) if (pattern.test(line)) out.push({ file, line: i + 1, why });
    for (const m of line.matchAll(CLIMB)) {
      const target = resolve(dirname(join(REPO_ROOT, file)), m[1]!);
      if (target !== REPO_ROOT && !target.startsWith(REPO_ROOT + sep)) {
        out.push({ file, line: i + 1, why: `"${m[1]}" climbs above the repository root` });
      }
    }
  });
  return out;
}

function trackedTextFiles(): string[] {
  const listed = execFileSync('git', ['-C', REPO_ROOT, 'ls-files', '-z', '--', ...FOLDERS], { encoding: 'utf8' });
  return listed.split('\0').filter((f) => f !== '');
}

test('the checks find what they look for, and no more', () => {
  const up = '..' + '/';
  const sample = [
    `see ${'DESIGN'}.md §1.3 for the fields`,
    `import x from '${up}${up}${up}shared/notes.js';`,
    `cat /${'work'}/team/RULES.md`,
    `import { y } from '${up}${up}src/errors.js';`,
    `the value ${up} alone, or a.b/${up}c inside a path`,
  ].join('\n');
  const found = findings('test/repo/sample.ts', sample).map((f) => `${f.line}: ${f.why}`);
  assert.deepEqual(found, [
    '1: the design file, which is not in the repository: cite the docs/ page instead',
    '2: a folder beside the repository',
    '2: "../../../" climbs above the repository root',
    "3: a path of one machine's working folders",
  ]);
});

test('no tracked file under the code folders refers outside the repository', () => {
  const files = trackedTextFiles();
  assert.ok(files.some((f) => f.startsWith('src/')) && files.some((f) => f.startsWith('deploy/')), `git listed ${files.length} files`);
  const found: Finding[] = [];
  for (const file of files) {
    const data = readFileSync(join(REPO_ROOT, file));
    if (data.includes(0)) continue; // binary
    found.push(...findings(file, data.toString('utf8')));
  }
  assert.deepEqual(
    found.map((f) => `${f.file}:${f.line}: ${f.why}`),
    [],
    `references outside the repository (paths relative to ${relative(process.cwd(), REPO_ROOT) || '.'})`,
  );
});
