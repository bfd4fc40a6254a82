// The shape nearly every signed request sends, read without the generic RFC 8941 parser: one Signature-Input
// member `label=("c1" "c2" ...);name=value...` in canonical form, the matching `label=:base64:` Signature, and
// `Content-Digest: sha-256=:base64:`. The generic parser builds a Map, a parser object and an object per item
// and parameter, and the signature base then serializes the inner list again; in the sidecar those allocations
// (young-generation GC) were most of the HMAC check's cost (bench/results/credentials-hmac-gap-*.md).
//
// The contract, checked by test/auth/signature-fields-match-the-generic-parser.test.ts: whenever a function here
// returns a value, the generic parser (structured-fields.ts) accepts the same text and means the same thing;
// for anything else (several members, spaces, escapes, tokens, decimals, booleans, negative or non-canonical
// numbers, component parameters) it returns undefined and the caller uses the generic parser. Only the
// canonical serialization is accepted, so the inner list as sent (`serialized`) is exactly what
// serializeInnerList() would produce for it: RFC 9421 §2.3 makes `@signature-params` that serialization.
import { isCanonicalBase64, type BareItem, type Parameters } from './structured-fields.js';

/**
 * Parameters as parallel arrays: parameter i is `keys[i]`, of type `types[i]`, with value `values[i]`. Three
 * arrays instead of a pair and an object per parameter (the fast path's point is to allocate little).
 */
export interface FlatParams {
  keys: string[];
  types: BareItem['type'][];
  values: BareItem['value'][];
}

/** The generic parser's parameters in the fast path's form. */
export function flatParams(params: Parameters): FlatParams {
  const flat: FlatParams = { keys: [], types: [], values: [] };
  for (const [k, v] of params) {
    flat.keys.push(k);
    flat.types.push(v.type);
    flat.values.push(v.value);
  }
  return flat;
}

/** A Signature-Input in the common shape: what the generic parser's one inner list holds, flattened. */
export interface CanonicalSignatureInput {
  label: string;
  /** The covered component names, in order (plain strings without parameters). */
  names: string[];
  /** The inner list's parameters, in order (integers and strings only), flattened as flatParams() does. */
  params: FlatParams;
  /** The inner list exactly as sent: its RFC 8941 serialization, since only the canonical form gets here. */
  serialized: string;
}

// Character classes of RFC 8941 keys (§3.1.2) as code tables, as in structured-fields.ts.
const KEY_START = new Uint8Array(128);
const KEY_CHAR = new Uint8Array(128);
for (let c = 0x61; c <= 0x7a; c++) KEY_START[c] = KEY_CHAR[c] = 1;
for (const c of '*') KEY_START[c.charCodeAt(0)] = 1;
for (const c of '0123456789_-.*') KEY_CHAR[c.charCodeAt(0)] = 1;

/** End of the key starting at `pos`, or -1 when none starts there. */
function keyEnd(text: string, pos: number): number {
  const first = text.charCodeAt(pos);
  if (!(first < 128 && KEY_START[first] === 1)) return -1;
  let i = pos + 1;
  for (let c = text.charCodeAt(i); c < 128 && KEY_CHAR[c] === 1; c = text.charCodeAt(++i));
  return i;
}

/**
 * End (after the closing quote) of a string starting with `"` at `pos` that holds no escape, or -1. Such a
 * string serializes as itself (RFC 8941 §4.1.6 escapes only `"` and `\`).
 */
function plainStringEnd(text: string, pos: number): number {
  if (text.charCodeAt(pos) !== 0x22) return -1;
  for (let i = pos + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c || c < 0x20 || c > 0x7e) return -1;
  }
  return -1;
}

/**
 * End of a non-negative integer at `pos` written as String(n) would write it (no leading zero, at most the 15
 * digits RFC 8941 allows), or -1 (a sign, a leading zero: the generic parser decides). A decimal point after
 * the digits is refused by the caller, which wants `;` or the end there.
 */
function canonicalIntegerEnd(text: string, pos: number): number {
  let i = pos;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  const digits = i - pos;
  if (digits === 0 || digits > 15 || (digits > 1 && text.charCodeAt(pos) === 0x30)) return -1;
  return i;
}

/** Names nearly every signature covers: handed out as these strings instead of a fresh copy per request. */
const COMMON_NAMES = ['@method', '@authority', '@path', '@query', 'content-digest', '@target-uri', '@request-target', '@scheme', 'content-type'];

/** The signature parameters of RFC 9421 §2.3 and the usual label: constants too. */
const COMMON_KEYS = ['created', 'keyid', 'alg', 'nonce', 'expires', 'tag'];
const COMMON_LABELS = ['sig1'];

/** text[from, to) as a string: a constant from `common` when it is one, a slice otherwise. */
function known(common: readonly string[], text: string, from: number, to: number): string {
  const length = to - from;
  for (const name of common) if (name.length === length && text.startsWith(name, from)) return name;
  return text.slice(from, to);
}

/** text[from, to) as a string: a constant for the common names, a slice otherwise. */
function componentName(text: string, from: number, to: number): string {
  return known(COMMON_NAMES, text, from, to);
}

/** The value of canonical decimal digits text[from, to) (at most 15: exact in a double), without a slice. */
function digitsValue(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (text.charCodeAt(i) - 0x30);
  return n;
}

/** Parses Signature-Input in the canonical common shape, or undefined (then parse it with parseDictionary). */
export function parseCanonicalSignatureInput(text: string): CanonicalSignatureInput | undefined {
  const labelEnd = keyEnd(text, 0);
  if (labelEnd < 0 || text.charCodeAt(labelEnd) !== 0x3d /* = */ || text.charCodeAt(labelEnd + 1) !== 0x28 /* ( */) return undefined;
  const names: string[] = [];
  let i = labelEnd + 2;
  if (text.charCodeAt(i) !== 0x29 /* ) */) {
    for (;;) {
      const end = plainStringEnd(text, i);
      if (end < 0) return undefined;
      names.push(componentName(text, i + 1, end - 1));
      const c = text.charCodeAt(end);
      i = end + 1;
      if (c === 0x29) break;
      // Exactly one space between items (a second space or a `)` after it is no string: plainStringEnd refuses).
      if (c !== 0x20) return undefined;
    }
  } else {
    i++;
  }
  const params: FlatParams = { keys: [], types: [], values: [] };
  while (i < text.length) {
    if (text.charCodeAt(i) !== 0x3b /* ; */) return undefined;
    const kEnd = keyEnd(text, i + 1);
    if (kEnd < 0 || text.charCodeAt(kEnd) !== 0x3d) return undefined;
    const key = known(COMMON_KEYS, text, i + 1, kEnd);
    if (params.keys.includes(key)) return undefined; // repeated: the generic parser refuses it
    let end: number;
    if (text.charCodeAt(kEnd + 1) === 0x22) {
      end = plainStringEnd(text, kEnd + 1);
      if (end < 0) return undefined;
      params.types.push('string');
      params.values.push(text.slice(kEnd + 2, end - 1));
    } else {
      end = canonicalIntegerEnd(text, kEnd + 1);
      if (end < 0) return undefined;
      params.types.push('integer');
      params.values.push(digitsValue(text, kEnd + 1, end));
    }
    params.keys.push(key);
    i = end;
  }
  return { label: known(COMMON_LABELS, text, 0, labelEnd), names, params, serialized: text.slice(labelEnd + 1) };
}

/**
 * The base64 text of `label=:base64:` when `text` is exactly that (one member, canonical padded base64), or
 * undefined. Canonical base64 decodes and encodes back to itself, so this text is also what
 * Buffer#toString('base64') gives for the decoded bytes.
 */
export function canonicalByteSequence(text: string, label: string): string | undefined {
  const n = label.length;
  if (text.length < n + 3 || keyEnd(text, 0) !== n || !text.startsWith(label) || text.charCodeAt(n) !== 0x3d || text.charCodeAt(n + 1) !== 0x3a || text.charCodeAt(text.length - 1) !== 0x3a) return undefined;
  const body = text.slice(n + 2, text.length - 1);
  return isCanonicalBase64(body) ? body : undefined;
}

/** The number of bytes canonical padded base64 `text` decodes to. */
export function base64Length(text: string): number {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}
