// SPIFFE IDs (SPIFFE-ID spec §2): parsing with a sentence per broken rule, and identity patterns where
// `*` is exactly one path segment and `**` (last segment only) is one or more remaining segments.
import { invalid } from '../errors.js';

export interface SpiffeId {
  id: string;
  trustDomain: string;
  /** "" for the trust domain's own ID, else "/seg/seg". */
  path: string;
}

const MAX_BYTES = 2048;
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const SEGMENT_CHAR = /^[a-zA-Z0-9._-]$/;

function describeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  return code < 0x20 || code > 0x7e ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}` : `'${ch}'`;
}

/** Why `text` is not a SPIFFE ID, or undefined when it is one. */
export function spiffeIdProblem(text: string): string | undefined {
  if (typeof text !== 'string') return 'a SPIFFE ID must be text';
  if (text.length === 0) return 'a SPIFFE ID must not be empty';
  if (Buffer.byteLength(text, 'utf8') > MAX_BYTES) return `a SPIFFE ID must be at most ${MAX_BYTES} bytes`;
  const schemeEnd = text.indexOf('://');
  if (schemeEnd < 0 || text.slice(0, schemeEnd) !== 'spiffe') {
    return 'the scheme must be "spiffe://" (lowercase)';
  }
  const rest = text.slice(schemeEnd + 3);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (td.length === 0) return 'the trust domain is missing';
  for (const ch of td) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue;
    if (ch === '@') return 'the trust domain must not contain user info (@)';
    if (ch === ':') return 'the trust domain must not contain a port';
    if (ch === '%') return 'percent-encoding is not allowed';
    if (ch === '?' || ch === '#') return 'a query or fragment is not allowed';
    if (ch >= 'A' && ch <= 'Z') return 'the trust domain must be lowercase';
    return `the trust domain contains ${describeChar(ch)}: only lowercase letters, digits, '.', '-' and '_' are allowed`;
  }
  if (path === '') return undefined;
  if (path.includes('?') || path.includes('#')) return 'a query or fragment is not allowed';
  if (path.includes('%')) return 'percent-encoding is not allowed';
  if (path.endsWith('/')) return 'the path must not end with "/"';
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg === '') return 'the path must not contain an empty segment ("//")';
    if (seg === '.' || seg === '..') return `the path must not contain a "${seg}" segment`;
    for (const ch of seg) {
      if (!SEGMENT_CHAR.test(ch)) {
        return `the path contains ${describeChar(ch)}: only letters, digits, '.', '-' and '_' are allowed`;
      }
    }
  }
  return undefined;
}

export function parseSpiffeId(text: string): SpiffeId {
  const problem = spiffeIdProblem(text);
  if (problem !== undefined) {
    const shown = typeof text === 'string' && text.length > 80 ? `${text.slice(0, 80)}…` : String(text);
    throw invalid(`Invalid SPIFFE ID "${shown}": ${problem}.`);
  }
  const rest = text.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return {
    id: text,
    trustDomain: slash < 0 ? rest : rest.slice(0, slash),
    path: slash < 0 ? '' : rest.slice(slash),
  };
}

/** A SPIFFE ID that names a workload: like parseSpiffeId but the path must not be empty. */
export function parseWorkloadSpiffeId(text: string): SpiffeId {
  const id = parseSpiffeId(text);
  if (id.path === '') throw invalid(`Invalid SPIFFE ID "${text}": a workload ID needs a path after the trust domain (spiffe://${id.trustDomain}/...).`);
  return id;
}

export function isSpiffeId(text: string): boolean {
  return spiffeIdProblem(text) === undefined;
}

/**
 * Compiles an identity pattern. `*` matches exactly one path segment, `**` (allowed only as the last
 * segment) matches one or more remaining segments; everything else matches exactly, case-sensitively.
 * The trust domain is always literal. Invalid patterns are refused with invalid_argument.
 */
export function compileSpiffePattern(pattern: string): (id: string) => boolean {
  if (typeof pattern !== 'string' || !pattern.startsWith('spiffe://')) {
    throw invalid(`Invalid SPIFFE ID pattern "${String(pattern)}": the scheme must be "spiffe://" (lowercase).`);
  }
  const segmentsAll = pattern.slice('spiffe://'.length).split('/');
  const wildcardFree = segmentsAll.map((s, i) => (i > 0 && (s === '*' || s === '**') ? 'x' : s)).join('/');
  const problem = spiffeIdProblem(`spiffe://${wildcardFree}`);
  if (problem !== undefined) {
    if (segmentsAll.slice(1).some((s) => s.includes('*'))) {
      throw invalid(`Invalid SPIFFE ID pattern "${pattern}": wildcards must be a whole path segment ("*" or "**"), and ${problem}.`);
    }
    throw invalid(`Invalid SPIFFE ID pattern "${pattern}": ${problem}.`);
  }
  const segments = segmentsAll.slice(1);
  const doubleAt = segments.indexOf('**');
  if (doubleAt >= 0 && doubleAt !== segments.length - 1) {
    throw invalid(`Invalid SPIFFE ID pattern "${pattern}": "**" is allowed only as the last path segment.`);
  }
  if (!segments.includes('*') && !segments.includes('**')) {
    return (id: string) => id === pattern;
  }
  const prefix = `spiffe://${segmentsAll[0]}/`;
  const rest = doubleAt >= 0;
  const fixed = rest ? segments.slice(0, -1) : segments;
  return (id: string): boolean => {
    if (typeof id !== 'string' || !id.startsWith(prefix) || !isSpiffeId(id)) return false;
    const parts = id.slice(prefix.length).split('/');
    if (rest ? parts.length <= fixed.length : parts.length !== fixed.length) return false;
    for (let i = 0; i < fixed.length; i++) {
      if (fixed[i] !== '*' && fixed[i] !== parts[i]) return false;
    }
    return true;
  };
}

export function matchesSpiffePattern(pattern: string, id: string): boolean {
  return compileSpiffePattern(pattern)(id);
}
