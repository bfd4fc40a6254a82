// Request-target normalization: the one place that turns what a client sent into the path that both the
// policy matches and the app receives, so the two can never disagree about which resource is meant.
// Anything that different HTTP stacks read differently (encoded '/', backslashes, ';' path parameters,
// raw non-ASCII bytes, control bytes, '..' above the root, absolute-form targets) is refused (400)
// instead of being guessed at.

/** The normalized form of a request-target, or why it cannot be normalized safely. */
export type NormalizedTarget =
  | {
      ok: true;
      /** Normalized path: what the app receives. Ends with '/' only when the client's path did. */
      path: string;
      /** The query exactly as sent, including its leading '?', or "" when there was none. */
      query: string;
    }
  | { ok: false; reason: string };

/**
 * Scratch space the hot path reuses between requests (decide() is synchronous, so one per Policy is
 * enough): the decoded segments the route table matches, without the trailing empty one.
 */
export interface PathScratch {
  /** Fully percent-decoded segments (what a decoding app router compares), valid up to `count`. */
  segments: string[];
  /** Segments in normalized encoding (unreserved decoded, other escapes kept with upper-case hex). */
  encoded: string[];
  count: number;
  /** False when the normalized path is exactly the path part that was sent. */
  changed: boolean;
  /** Index of the '?' in the raw target, or its length. */
  queryStart: number;
  /** Why the target was refused, when normalizePath returned undefined. */
  reason: string;
}

export function newPathScratch(): PathScratch {
  return { segments: [], encoded: [], count: 0, changed: false, queryStart: 0, reason: '' };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
export function isUnreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

const HEX = '0123456789ABCDEF';

/** Why a raw (not percent-encoded) path character is refused, or undefined when it is fine. */
function rawCharProblem(c: number): string | undefined {
  if (c < 0x20 || c === 0x7f) return c === 0 ? 'NUL byte' : 'control character';
  if (c === 0x20) return 'space';
  if (c > 0x7f) return 'non-ASCII character (percent-encode it)';
  if (c === 0x5c) return 'backslash';
  // Tomcat, Jetty and Spring strip ";params" from segments, find-my-way can cut the path at ';', express
  // keeps it: no single reading that the policy could share with every app, so it is refused.
  if (c === 0x3b) return "';' path parameter";
  if (c === 0x23) return "'#' fragment";
  return undefined;
}

/** Why a percent-decoded byte is refused in a path, or undefined when it is fine. */
function escapedByteProblem(b: number): string | undefined {
  if (b === 0x2f) return "encoded '/'";
  if (b === 0x5c) return "encoded '\\'";
  if (b === 0) return 'encoded NUL';
  if (b < 0x20 || b === 0x7f) return 'encoded control character';
  return undefined;
}

function targetFormProblem(raw: string): string {
  if (raw.length === 0) return 'empty target';
  if (raw === '*') return 'asterisk-form target';
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw)) return 'absolute-form target';
  return "target does not start with '/'";
}

/**
 * Normalizes the path part of `raw` into `scratch` and returns the normalized path, or undefined with
 * `scratch.reason` set. No regular expressions and no allocation beyond the segment strings (and the
 * path string when it differs from what was sent).
 */
export function normalizePath(raw: string, scratch: PathScratch): string | undefined {
  const length = raw.length;
  if (length === 0 || raw.charCodeAt(0) !== 0x2f) {
    scratch.reason = targetFormProblem(raw);
    return undefined;
  }
  let queryStart = raw.indexOf('?');
  if (queryStart < 0) queryStart = length;
  scratch.queryStart = queryStart;
  const segments = scratch.segments;
  const encoded = scratch.encoded;
  let count = 0;
  let changed = false;
  let trailingSlash = false;
  let empties = 0;
  let start = 1;
  while (start <= queryStart) {
    let end = raw.indexOf('/', start);
    if (end < 0 || end > queryStart) end = queryStart;
    const last = end === queryStart;
    let hasEscape = false;
    for (let i = start; i < end; i++) {
      const c = raw.charCodeAt(i);
      if (c === 0x25) {
        const hi = i + 2 < end ? hexValue(raw.charCodeAt(i + 1)) : -1;
        const lo = hi >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
        if (lo < 0) {
          scratch.reason = 'malformed percent escape';
          return undefined;
        }
        const problem = escapedByteProblem(hi * 16 + lo);
        if (problem !== undefined) {
          scratch.reason = problem;
          return undefined;
        }
        hasEscape = true;
        i += 2;
      } else {
        const problem = rawCharProblem(c);
        if (problem !== undefined) {
          scratch.reason = problem;
          return undefined;
        }
      }
    }
    let enc: string;
    let dec: string;
    if (!hasEscape) {
      enc = dec = raw.slice(start, end);
    } else {
      const decodedSegment = decodeSegment(raw, start, end, scratch);
      if (decodedSegment === undefined) return undefined;
      enc = decodedSegment.encoded;
      dec = decodedSegment.decoded;
      if (enc.length !== end - start || enc !== raw.slice(start, end)) changed = true;
    }
    if (enc === '.' || enc === '..' || (enc.length === 0 && last)) {
      if (enc === '..') {
        if (count === 0) {
          scratch.reason = "'..' above the root";
          return undefined;
        }
        if (encoded[count - 1]!.length === 0) empties--;
        count--;
      }
      // RFC 3986 remove_dot_segments: "/a/." and "/a/b/.." keep a trailing '/', as does "/a/".
      if (last) trailingSlash = true;
      else changed = true;
      if (enc.length !== 0) changed = true;
    } else {
      // Empty segments ("//") count for '..' as in RFC 3986 and WHATWG URL ("/a//.." is "/a/"), and are
      // dropped afterwards.
      if (enc.length === 0) {
        empties++;
        changed = true;
      }
      segments[count] = dec;
      encoded[count] = enc;
      count++;
    }
    start = end + 1;
  }
  if (empties > 0) {
    let kept = 0;
    for (let i = 0; i < count; i++) {
      if (encoded[i]!.length === 0) continue;
      segments[kept] = segments[i]!;
      encoded[kept] = encoded[i]!;
      kept++;
    }
    count = kept;
  }
  scratch.count = count;
  scratch.changed = changed;
  if (!changed) return queryStart === length ? raw : raw.slice(0, queryStart);
  if (count === 0) return '/';
  let path = '';
  for (let i = 0; i < count; i++) path += '/' + encoded[i];
  return trailingSlash ? path + '/' : path;
}

/** Normalized encoding and full decoding of one segment that holds valid escapes (checked by the caller). */
function decodeSegment(
  raw: string,
  start: number,
  end: number,
  scratch: PathScratch,
): { encoded: string; decoded: string } | undefined {
  let encoded = '';
  let decoded = '';
  let bytes: number[] | undefined;
  for (let i = start; i < end; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      encoded += raw[i];
      if (bytes !== undefined) bytes.push(c);
      else decoded += raw[i];
      continue;
    }
    const b = hexValue(raw.charCodeAt(i + 1)) * 16 + hexValue(raw.charCodeAt(i + 2));
    i += 2;
    if (isUnreserved(b)) encoded += String.fromCharCode(b);
    else encoded += '%' + HEX[b >> 4] + HEX[b & 15];
    if (bytes === undefined && b < 0x80) {
      decoded += String.fromCharCode(b);
    } else {
      if (bytes === undefined) {
        bytes = [];
        for (let j = 0; j < decoded.length; j++) bytes.push(decoded.charCodeAt(j));
      }
      bytes.push(b);
    }
  }
  if (bytes !== undefined) {
    try {
      decoded = utf8.decode(Uint8Array.from(bytes));
    } catch {
      scratch.reason = 'percent escapes that are not UTF-8';
      return undefined;
    }
  }
  return { encoded, decoded };
}

/** Why a raw query character is refused, or undefined. The query is otherwise forwarded as sent. */
function queryProblem(raw: string, from: number): string | undefined {
  for (let i = from; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return c === 0 ? 'NUL byte' : c === 0x20 ? 'space' : c > 0x7f ? 'non-ASCII character (percent-encode it)' : 'control character';
    if (c === 0x23) return "'#' fragment";
  }
  return undefined;
}

/** Checks the query part of a target that normalizePath accepted; sets scratch.reason when it is refused. */
export function queryAcceptable(raw: string, scratch: PathScratch): boolean {
  const problem = queryProblem(raw, scratch.queryStart);
  if (problem === undefined) return true;
  scratch.reason = problem;
  return false;
}

/**
 * Normalizes a raw request-target: percent-decoding of unreserved characters only, upper-case hex in other
 * escapes, '.', '..' and empty segments resolved, the query kept apart (forwarded as sent, ignored for
 * matching). Refuses encoded '/' or '\', backslashes, NUL and control bytes (raw or escaped), '..' above
 * the root, absolute- and asterisk-form targets, malformed escapes, escapes that are not UTF-8, ';' path
 * parameters, '#', spaces and raw non-ASCII bytes.
 */
export function normalizeTarget(rawTarget: string): NormalizedTarget {
  const scratch = newPathScratch();
  const path = normalizePath(rawTarget, scratch);
  if (path === undefined || !queryAcceptable(rawTarget, scratch)) return { ok: false, reason: scratch.reason };
  return { ok: true, path, query: rawTarget.slice(scratch.queryStart) };
}
