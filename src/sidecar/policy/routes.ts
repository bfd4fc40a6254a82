// Route matching compiled once per policy load into a deterministic automaton over path segments, so a
// request costs one map lookup per segment and one array read, whatever the number of routes: no
// backtracking, no regular expressions. First match wins: the answer is the lowest-numbered route whose
// pattern and methods both match.

/** Methods a policy may name (RFC 9110, PATCH, WebDAV). Requests with other methods match only method-less routes. */
export const HTTP_METHODS: readonly string[] = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH',
];
const OTHER_METHOD = HTTP_METHODS.length;
const METHOD_BUCKETS = HTTP_METHODS.length + 1;
const ANY_METHOD = (1 << METHOD_BUCKETS) - 1;
const methodBuckets = new Map(HTTP_METHODS.map((m, i) => [m, i]));

/** The bucket a request method falls in (unknown methods share one). */
export function methodBucket(method: string): number {
  const bucket = methodBuckets.get(method);
  return bucket === undefined ? OTHER_METHOD : bucket;
}

/** Bitmask over method buckets; undefined or empty list = any method, including unknown ones. */
export function methodMask(methods: readonly string[] | undefined): number {
  if (methods === undefined || methods.length === 0) return ANY_METHOD;
  let mask = 0;
  for (const m of methods) mask |= 1 << methodBucket(m);
  return mask;
}

/** One pattern segment: a decoded literal, `*` (exactly one segment) or `**` (zero or more, last only). */
export type PatternSegment = { literal: string } | '*' | '**';

/**
 * Parses a path pattern into segments, or returns why it is not one. Literal segments may hold percent
 * escapes (decoded here, like request segments are) and non-ASCII text (matched against the decoded path).
 */
export function parsePathPattern(pattern: string): PatternSegment[] | string {
  if (pattern.length === 0) return 'must not be empty';
  if (pattern[0] !== '/') return `"${pattern}" must start with "/"`;
  if (pattern === '/') return [];
  if (pattern.endsWith('/')) {
    return `"${pattern}" must not end with "/" (the trailing slash is ignored when matching: write "${pattern.replace(/\/+$/, '') || '/'}")`;
  }
  const parts = pattern.slice(1).split('/');
  const segments: PatternSegment[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '**') {
      if (i !== parts.length - 1) return `"${pattern}": "**" is allowed only as the last segment`;
      segments.push('**');
      continue;
    }
    if (part === '*') {
      segments.push('*');
      continue;
    }
    const literal = decodePatternSegment(part);
    if (literal.problem !== undefined) return `"${pattern}": ${literal.problem}`;
    segments.push({ literal: literal.value });
  }
  return segments;
}

function decodePatternSegment(part: string): { value: string; problem?: string } {
  if (part === '') return { value: '', problem: 'empty segment ("//") never matches: request paths are normalized' };
  if (part.includes('*')) return { value: '', problem: `"*" must be a whole segment ("*" or "**"); write %2A for a literal "*"` };
  const bytes: number[] = [];
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c === 0x25) {
      const b = Number.parseInt(part.slice(i + 1, i + 3), 16);
      if (!/^[0-9A-Fa-f]{2}$/.test(part.slice(i + 1, i + 3))) return { value: '', problem: 'malformed percent escape' };
      if (b === 0x2f || b === 0x5c) return { value: '', problem: `requests with an encoded "${String.fromCharCode(b)}" are rejected (400) before matching` };
      if (b < 0x20 || b === 0x7f) return { value: '', problem: 'requests with encoded control characters are rejected (400) before matching' };
      bytes.push(b);
      i += 2;
      continue;
    }
    if (c < 0x20 || c === 0x7f) return { value: '', problem: 'control characters are not allowed' };
    if (c === 0x3b) return { value: '', problem: 'requests with ";" in the path are rejected (400) before matching; write %3B to match an encoded ";"' };
    if (c === 0x3f || c === 0x23) return { value: '', problem: 'a pattern matches the path only (the query is ignored): remove "?" / "#" or write %3F / %23' };
    if (c === 0x5c) return { value: '', problem: 'requests with "\\" are rejected (400) before matching' };
    if (c > 0x7f) {
      // Non-ASCII text in the pattern: compared with the UTF-8-decoded request segment.
      const cp = part.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
      if (cp > 0xffff) i++;
      continue;
    }
    bytes.push(c);
  }
  let value: string;
  try {
    value = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return { value: '', problem: 'percent escapes that are not UTF-8 never match (such requests are rejected)' };
  }
  if (value === '.' || value === '..') return { value: '', problem: `a "${value}" segment never matches: request paths are normalized` };
  return { value };
}

export interface RouteEntry {
  segments: PatternSegment[];
  /** Bitmask over method buckets (methodMask). */
  methods: number;
}

/** A state of the automaton: the routes still alive after the segments seen so far. */
interface State {
  /** Next state for a segment equal to one of the literals the alive routes expect here. */
  readonly next: Map<string, State | null>;
  /** Next state for any other segment (null: no route can match any more). */
  other: State | null;
  /** Per method bucket, the first route that matches when the path ends here; -1 when none. */
  readonly end: Int32Array;
}

/** Thrown by RouteTable when wildcards combine into more states than MAX_STATES (a policy to simplify). */
export const MAX_STATES = 20000;

export class RouteTable {
  private readonly start: State | null;
  /** For each route, the first route that answers instead of it wherever it matches, or -1 when it is reachable. */
  readonly shadowedBy: Int32Array;

  constructor(routes: readonly RouteEntry[]) {
    const reachable = new Uint8Array(routes.length);
    const loserTo = new Int32Array(routes.length).fill(-1);
    const states = new Map<string, State>();
    // An item is route r at segment position k; each alive route appears once (its position is determined by
    // the depth, or pinned on its trailing `**`), so a state is identified by its sorted items.
    type Item = readonly [number, number];
    const keyOf = (items: Item[]) => items.map(([r, k]) => `${r}:${k}`).join(',');
    const pending: [State, Item[]][] = [];
    const stateFor = (items: Item[]): State | null => {
      if (items.length === 0) return null;
      const key = keyOf(items);
      const known = states.get(key);
      if (known !== undefined) return known;
      if (states.size >= MAX_STATES) {
        throw new RangeError(`the route patterns combine into more than ${MAX_STATES} matching states; use fewer "*" segments`);
      }
      const end = new Int32Array(METHOD_BUCKETS).fill(-1);
      for (const [r, k] of items) {
        const segs = routes[r]!.segments;
        if (k !== segs.length && segs[k] !== '**') continue;
        for (let b = 0; b < METHOD_BUCKETS; b++) {
          if ((routes[r]!.methods & (1 << b)) === 0) continue;
          if (end[b] === -1) {
            end[b] = r;
            reachable[r] = 1;
          } else if (loserTo[r] === -1) {
            loserTo[r] = end[b]!;
          }
        }
      }
      const state: State = { next: new Map(), other: null, end };
      states.set(key, state);
      pending.push([state, items]);
      return state;
    };
    const advance = (items: Item[], segment: string | undefined): Item[] => {
      const out: Item[] = [];
      for (const item of items) {
        const [r, k] = item;
        const p = routes[r]!.segments[k];
        if (p === undefined) continue;
        if (p === '**') out.push(item);
        else if (p === '*' || (segment !== undefined && p.literal === segment)) out.push([r, k + 1]);
      }
      return out;
    };
    this.start = stateFor(routes.map((_, r) => [r, 0] as const));
    while (pending.length > 0) {
      const [state, items] = pending.pop()!;
      for (const [r, k] of items) {
        const p = routes[r]!.segments[k];
        if (p !== undefined && typeof p === 'object' && !state.next.has(p.literal)) {
          state.next.set(p.literal, stateFor(advance(items, p.literal)));
        }
      }
      state.other = stateFor(advance(items, undefined));
    }
    // Every state is reachable by some concrete path (a segment name no pattern uses stands for "other"), and
    // every bucket by some method, so a route that never wins anywhere can never match.
    this.shadowedBy = loserTo.map((winner, r) => (reachable[r] === 1 ? -1 : winner));
  }

  /** The first route matching `count` decoded segments and the method bucket, or -1. */
  match(segments: readonly string[], count: number, bucket: number): number {
    let state = this.start;
    for (let i = 0; i < count && state !== null; i++) {
      const next = state.next.get(segments[i]!);
      state = next !== undefined ? next : state.other;
    }
    return state === null ? -1 : state.end[bucket]!;
  }
}
