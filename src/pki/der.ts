// A tiny DER toolkit: an encoder that concatenates Buffers (the per-certificate hot path: one TBS per leaf
// must cost microseconds, not the milliseconds a generic ASN.1 object tree costs), and a strict reader
// that keeps exact byte spans, which signature checks need (the signed TBS bytes, the issuer/subject Name
// bytes, the SubjectPublicKeyInfo bytes must be the original bytes, never a re-encoding).
import { invalid } from '../errors.js';

// ---------- encoding ----------

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** One TLV with a single-byte tag. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const len = body.length;
  // Short lengths are by far the most common: avoid the intermediate length Buffer.
  if (len < 0x80) {
    const out = Buffer.allocUnsafe(2 + len);
    out[0] = tag;
    out[1] = len;
    body.copy(out, 2);
    return out;
  }
  return Buffer.concat([Buffer.from([tag]), lengthBytes(len), body]);
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Buffer[]): Buffer => tlv(TAG.SET, ...parts);
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unusedBits]), b);
export const nullValue = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const booleanTrue = (): Buffer => Buffer.from([TAG.BOOLEAN, 1, 0xff]);
/** [n] EXPLICIT: constructed context tag around a complete TLV. */
export const explicit = (n: number, ...inner: Buffer[]): Buffer => tlv(0xa0 | n, ...inner);
/** [n] IMPLICIT on a primitive value: the context tag replaces the universal tag. */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

/** A non-negative INTEGER from big-endian magnitude bytes (leading zeros stripped, a 0x00 pad added when the high bit is set). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let body = magnitude.subarray(i);
  if (body.length === 0) body = Buffer.from([0]);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(TAG.INTEGER, body);
}

export function smallInteger(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) throw invalid(`Negative integers are not encoded here (got ${v}).`);
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return unsignedInteger(Buffer.from(hex, 'hex'));
}

export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const printableString = (s: string): Buffer => tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'latin1'));
export const ia5String = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'latin1'));

const oidCache = new Map<string, Buffer>();
/** OBJECT IDENTIFIER from dotted text; cached because the same few OIDs appear in every certificate. */
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw invalid(`"${dotted}" is not a dotted object identifier.`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! >= 40n)) {
    throw invalid(`"${dotted}" is not a valid object identifier.`);
  }
  const bytes: number[] = [];
  const first = arcs[0]! * 40n + arcs[1]!;
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [];
    let v = arc;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    bytes.push(...chunk);
  }
  const out = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, out);
  return out;
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always Z and whole seconds. */
export function time(d: Date): Buffer {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw invalid('A certificate date is not a valid date.');
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) throw invalid(`The year ${y} cannot be encoded in a certificate (1950-9999).`);
  const rest =
    pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z';
  if (y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y) + rest, 'latin1'));
}

// ---------- reading ----------

/** One parsed TLV: offsets into `buf` (start of the tag, start of the content, end). */
export interface DerNode {
  buf: Buffer;
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Thrown while reading; the parsers turn it into a sentence about the whole object. */
export class DerError extends Error {}

/** Reads one TLV at `offset`, which must end at or before `limit`. Strict DER: definite, minimal lengths, low tag numbers. */
export function readNode(buf: Buffer, offset: number, limit: number): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length is not DER');
    if (count > 4) throw new DerError('element too long');
    if (pos + count > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[pos++]!;
    if (len < 0x80 || (count > 1 && buf[pos - count] === 0)) throw new DerError('non-minimal length');
  }
  if (pos + len > limit) throw new DerError('truncated element');
  return { buf, tag, start: offset, contentStart: pos, end: pos + len };
}

/** Parses a whole buffer as exactly one element. */
export function readRoot(buf: Buffer): DerNode {
  const node = readNode(buf, 0, buf.length);
  if (node.end !== buf.length) throw new DerError('trailing bytes after the element');
  return node;
}

export function children(node: DerNode): DerNode[] {
  if (!(node.tag & 0x20)) throw new DerError('expected a constructed element');
  const out: DerNode[] = [];
  let pos = node.contentStart;
  while (pos < node.end) {
    const child = readNode(node.buf, pos, node.end);
    out.push(child);
    pos = child.end;
    if (out.length > 10000) throw new DerError('too many elements');
  }
  return out;
}

export const contentOf = (n: DerNode): Buffer => n.buf.subarray(n.contentStart, n.end);
export const bytesOf = (n: DerNode): Buffer => n.buf.subarray(n.start, n.end);

export function expectTag(n: DerNode | undefined, tag: number, what: string): DerNode {
  if (!n) throw new DerError(`${what} is missing`);
  if (n.tag !== tag) throw new DerError(`${what} has tag 0x${n.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return n;
}

const oidTextCache = new Map<string, string>();

export function readOid(n: DerNode): string {
  expectTag(n, TAG.OID, 'object identifier');
  const c = contentOf(n);
  if (c.length === 0 || c[c.length - 1]! & 0x80) throw new DerError('malformed object identifier');
  // The same few OIDs appear in every certificate: cache their text by their bytes.
  const key = c.length <= 16 ? c.toString('latin1') : undefined;
  const hit = key === undefined ? undefined : oidTextCache.get(key);
  if (hit !== undefined) return hit;
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (v === 0n && b === 0x80) throw new DerError('non-minimal object identifier');
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  const text = [...head, ...arcs.slice(1)].join('.');
  if (key !== undefined && oidTextCache.size < 1024) oidTextCache.set(key, text);
  return text;
}

/** INTEGER as big-endian bytes (as stored, sign included). */
export function readIntegerBytes(n: DerNode): Buffer {
  expectTag(n, TAG.INTEGER, 'integer');
  const c = contentOf(n);
  if (c.length === 0) throw new DerError('empty integer');
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) {
    throw new DerError('non-minimal integer');
  }
  return c;
}

export function readSmallInteger(n: DerNode): number {
  const c = readIntegerBytes(n);
  if (c[0]! & 0x80) throw new DerError('negative integer');
  if (c.length > 6) throw new DerError('integer too large');
  return c.reduce((acc, b) => acc * 256 + b, 0);
}

export function readBigInteger(n: DerNode): bigint {
  const c = readIntegerBytes(n);
  if (c[0]! & 0x80) throw new DerError('negative integer');
  return BigInt('0x' + c.toString('hex'));
}

export function readBoolean(n: DerNode): boolean {
  expectTag(n, TAG.BOOLEAN, 'boolean');
  const c = contentOf(n);
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw new DerError('malformed boolean');
  return c[0] === 0xff;
}

/** BIT STRING contents without the unused-bits octet, plus that count. */
export function readBitString(n: DerNode): { bytes: Buffer; unusedBits: number } {
  expectTag(n, TAG.BIT_STRING, 'bit string');
  const c = contentOf(n);
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw new DerError('malformed bit string');
  return { bytes: c.subarray(1), unusedBits: c[0]! };
}

const UTC_RE = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GEN_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** UTCTime or GeneralizedTime in the RFC 5280 profile (seconds present, Z, no fractions). */
export function readTime(n: DerNode): Date {
  const text = contentOf(n).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (n.tag === TAG.UTC_TIME && (m = UTC_RE.exec(text))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (n.tag === TAG.GENERALIZED_TIME && (m = GEN_RE.exec(text))) {
    year = Number(m[1]);
  } else {
    throw new DerError('malformed time');
  }
  const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, s));
  if (
    mo < 1 || mo > 12 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59 || Number.isNaN(date.getTime())
  ) {
    throw new DerError('time out of range');
  }
  if (year < 100) date.setUTCFullYear(year);
  return date;
}

/** Text of a directory string (UTF8String, PrintableString, IA5String, T61String, BMPString). */
export function readString(n: DerNode): string {
  const c = contentOf(n);
  switch (n.tag) {
    case TAG.UTF8_STRING:
      return c.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.T61_STRING:
      return c.toString('latin1');
    case TAG.BMP_STRING: {
      if (c.length % 2) throw new DerError('malformed BMPString');
      const swapped = Buffer.from(c);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    default:
      throw new DerError(`unsupported string type 0x${n.tag.toString(16)}`);
  }
}

// ---------- single-allocation encoding ----------
// The per-certificate TBS is described as a tree of Constructed nodes over already-encoded Buffers, sized
// bottom-up, then written into one Buffer: no intermediate copies, little garbage.

export interface Constructed {
  tag: number;
  parts: Part[];
  contentLength: number;
}
export type Part = Buffer | Constructed;

function headerSize(len: number): number {
  return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : len < 0x1000000 ? 5 : 6;
}

function partSize(p: Part): number {
  return p instanceof Uint8Array ? p.length : headerSize(p.contentLength) + p.contentLength;
}

export function constructed(tag: number, parts: Part[]): Constructed {
  let n = 0;
  for (const p of parts) n += partSize(p);
  return { tag, parts, contentLength: n };
}

function writePart(out: Buffer, pos: number, p: Part): number {
  if (p instanceof Uint8Array) {
    out.set(p, pos);
    return pos + p.length;
  }
  out[pos++] = p.tag;
  const len = p.contentLength;
  if (len < 0x80) {
    out[pos++] = len;
  } else {
    const size = headerSize(len) - 2;
    out[pos++] = 0x80 | size;
    for (let i = size - 1; i >= 0; i--) out[pos++] = (len >>> (8 * i)) & 0xff;
  }
  for (const child of p.parts) pos = writePart(out, pos, child);
  return pos;
}

/** The DER of a Constructed tree, in one allocation. */
export function encode(root: Constructed): Buffer {
  const out = Buffer.allocUnsafe(partSize(root));
  writePart(out, 0, root);
  return out;
}
