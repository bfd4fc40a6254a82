// PEM (RFC 7468) reading and writing. Strict on the blocks themselves (matching BEGIN/END labels, clean
// base64, nothing truncated) and tolerant around them, as OpenSSL is (`openssl x509 -text` output
// puts text before the block).
import { invalid } from '../errors.js';

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BEGIN_RE = /^-----BEGIN ([A-Z0-9 ]*)-----$/;
const END_RE = /^-----END ([A-Z0-9 ]*)-----$/;
const BASE64_LINE_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every PEM block in the text, in order. */
export function decodePem(text: string | Buffer): PemBlock[] {
  const source = typeof text === 'string' ? text : Buffer.isBuffer(text) ? text.toString('latin1') : undefined;
  if (source === undefined) throw invalid('PEM input must be text.');
  const lines = source.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let label: string | undefined;
  let body: string[] = [];
  let beginLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (label === undefined) {
      const m = BEGIN_RE.exec(line);
      if (m) {
        label = m[1]!;
        body = [];
        beginLine = i + 1;
      } else if (line.startsWith('-----BEGIN')) {
        throw invalid(`Malformed PEM header on line ${i + 1}: "${line.slice(0, 60)}".`);
      }
      continue;
    }
    const end = END_RE.exec(line);
    if (end) {
      if (end[1] !== label) throw invalid(`PEM block "${label}" (line ${beginLine}) ends with "END ${end[1]}": the file is damaged.`);
      const b64 = body.join('');
      if (b64.length === 0 || b64.length % 4 !== 0) {
        throw invalid(`PEM block "${label}" (line ${beginLine}) has ${b64.length === 0 ? 'no' : 'truncated'} base64 content.`);
      }
      const der = Buffer.from(b64, 'base64');
      blocks.push({ label, der });
      label = undefined;
      continue;
    }
    if (line.startsWith('-----')) {
      throw invalid(`PEM block "${label}" (line ${beginLine}) is not closed before line ${i + 1}: the file is truncated or damaged.`);
    }
    if (line.includes(':')) {
      throw invalid(`PEM block "${label}" (line ${beginLine}) has headers (line ${i + 1}); encrypted legacy PEM is not supported.`);
    }
    if (!BASE64_LINE_RE.test(line)) throw invalid(`PEM block "${label}" has invalid base64 on line ${i + 1}.`);
    if (body.length > 0 && body[body.length - 1]!.includes('=')) {
      throw invalid(`PEM block "${label}" has data after the base64 padding on line ${i + 1}.`);
    }
    body.push(line);
  }
  if (label !== undefined) throw invalid(`PEM block "${label}" (line ${beginLine}) has no END line: the file is truncated.`);
  if (blocks.length === 0) throw invalid('No PEM block found (expected -----BEGIN ...----- lines).');
  return blocks;
}

export function encodePem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** True when the bytes look like PEM text rather than DER. */
export function looksLikePem(input: Buffer | string): boolean {
  const head = typeof input === 'string' ? input : input.subarray(0, 65536).toString('latin1');
  return head.includes('-----BEGIN');
}

/** The DER of every PEM block with `label`, or the input itself when it is DER (starts with a SEQUENCE). */
export function readDerOrPem(input: Buffer, label: string): Buffer[] {
  if (input.length === 0) throw invalid(`The input is empty: expected ${label} in PEM or DER form.`);
  if (looksLikePem(input)) {
    const blocks = decodePem(input).filter((b) => b.label === label);
    if (blocks.length === 0) throw invalid(`No "${label}" PEM block found.`);
    return blocks.map((b) => b.der);
  }
  if (input[0] !== 0x30) throw invalid(`The input is neither PEM nor DER: expected ${label}.`);
  return [input];
}
