// A small RFC 6902 JSONPatch applier (add, remove, replace, test; RFC 6901 pointers), to apply what the
// admission webhook answers the way the API server does and compare the pod that results.
import { isDeepStrictEqual } from 'node:util';

export interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`JSON pointer "${pointer}" must start with /`);
  return pointer.slice(1).split('/').map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `doc` with `ops` applied (a copy; the input is untouched). Throws on a path that does not exist, as RFC 6902 requires. */
export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  let root: any = structuredClone(doc);
  for (const { op, path, value } of ops) {
    const tokens = parsePointer(path);
    if (tokens.length === 0) {
      if (op === 'test') {
        if (!isDeepStrictEqual(root, value)) throw new Error('test failed at the root');
        continue;
      }
      root = structuredClone(value);
      continue;
    }
    const last = tokens.pop()!;
    let parent = root;
    for (const t of tokens) {
      if (parent === null || typeof parent !== 'object' || !(t in parent)) throw new Error(`${op} ${path}: ${t} does not exist`);
      parent = parent[t];
    }
    if (parent === null || typeof parent !== 'object') throw new Error(`${op} ${path}: the parent is not a container`);
    const isArray = Array.isArray(parent);
    const index = isArray ? (last === '-' ? parent.length : Number(last)) : -1;
    if (isArray && !(Number.isInteger(index) && index >= 0 && index <= parent.length)) throw new Error(`${op} ${path}: bad index`);
    const exists = isArray ? index < parent.length : Object.prototype.hasOwnProperty.call(parent, last);
    switch (op) {
      case 'add':
        if (isArray) parent.splice(index, 0, structuredClone(value));
        else parent[last] = structuredClone(value);
        break;
      case 'remove':
      case 'replace':
        if (!exists) throw new Error(`${op} ${path}: nothing there`);
        if (op === 'remove') {
          if (isArray) parent.splice(index, 1);
          else delete parent[last];
        } else parent[isArray ? index : last] = structuredClone(value);
        break;
      case 'test':
        if (!exists || !isDeepStrictEqual(parent[isArray ? index : last], value)) throw new Error(`test ${path} failed`);
        break;
      default:
        throw new Error(`unsupported op ${op}`);
    }
  }
  return root;
}
