// No module of src/ imports itself back through others. A cycle makes load order matter (a value read
// before its module finished evaluating is undefined) and ties modules that should stand alone, as
// cli/main.ts and cli/policy.ts once were over ExitStatus. Every edge counts: static imports, `import
// type`, re-exports and dynamic import(), since each is a dependency a reader has to follow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, dirname } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../support/cli.js';

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Every .ts file under `dir` and the files under `dir` it imports (relative specifiers, `.js` → `.ts`). */
function importGraph(dir: string): Graph {
  const files = new Set(sourceFiles(dir));
  const graph: Graph = new Map();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'))
      .filter((target) => files.has(target));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** One cycle per strongly connected component of more than one file (or a file importing itself). */
function cycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(pathWithin(graph, new Set(component), v));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A concrete loop v → … → v inside one component, for a message a reader can follow. */
function pathWithin(graph: Graph, component: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = previous.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

test('the detector finds a cycle through a dynamic import and an import type', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshward-cycles-'));
  try {
    writeFileSync(join(dir, 'main.ts'), "export const main = async () => (await import('./command.js')).run;\n");
    writeFileSync(join(dir, 'command.ts'), "import type { Status } from './status.js';\nexport const run = (s: Status) => s;\n");
    writeFileSync(join(dir, 'status.ts'), "export { main } from './main.js';\nexport type Status = number;\n");
    writeFileSync(join(dir, 'alone.ts'), "import { main } from './main.js';\nexport const x = main;\n");
    const found = cycles(importGraph(dir)).map((c) => c.map((f) => relative(dir, f)));
    assert.deepEqual(found.map((c) => [...c].sort()), [['command.ts', 'main.ts', 'main.ts', 'status.ts']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('src/ has no import cycle', () => {
  const src = join(REPO_ROOT, 'src');
  const graph = importGraph(src);
  // The walk really saw the code: the CLI entry reaches its command modules.
  assert.ok(graph.size > 50, `only ${graph.size} files found under ${src}`);
  assert.ok(graph.get(join(src, 'cli', 'main.ts'))?.includes(join(src, 'cli', 'policy.ts')), 'cli/main.ts → cli/policy.ts not seen');
  const found = cycles(graph).map((c) => c.map((f) => relative(REPO_ROOT, f)).join(' → '));
  assert.deepEqual(found, [], `import cycles:\n${found.join('\n')}`);
});
