// subjectAltName / nameConstraints GeneralNames: URI, DNS and IP entries, encoded and decoded, with the
// IPv4/IPv6 text <-> octets conversions they need.
import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from '../errors.js';
import * as der from './der.js';

export interface AltNames {
  uris: string[];
  dns: string[];
  ips: string[];
}

const TAG_DNS = 0x82;
const TAG_URI = 0x86;
const TAG_IP = 0x87;

/** IPv4 (4 octets) or IPv6 (16 octets) from text; invalid_argument otherwise. */
export function ipToBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (isIPv6(text) && !text.includes('%')) {
    let s = text;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (v4) {
      const b = v4[1]!.split('.').map(Number);
      s = s.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
    }
    const [head, tail] = s.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  throw invalid(`"${text}" is not an IPv4 or IPv6 address.`);
}

/** Text of a 4- or 16-octet address (IPv6 in RFC 5952 form). */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) return `#${bytes.toString('hex')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

const DNS_RE = /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

function checkAscii(kind: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`A ${kind} subject alternative name must not be empty.`);
  if (!/^[\x21-\x7e]+$/.test(value)) throw invalid(`The ${kind} name "${value}" must be printable ASCII without spaces.`);
}

/** The GeneralNames SEQUENCE for a subjectAltName (URIs first, then DNS names, then IPs). */
export function encodeAltNames(names: Partial<AltNames>): Buffer {
  const parts: Buffer[] = [];
  for (const uri of names.uris ?? []) {
    checkAscii('URI', uri);
    parts.push(der.implicitPrimitive(6, Buffer.from(uri, 'latin1')));
  }
  for (const dns of names.dns ?? []) {
    checkAscii('DNS', dns);
    if (dns.length > 253 || !DNS_RE.test(dns)) throw invalid(`"${dns}" is not a valid DNS name.`);
    parts.push(der.implicitPrimitive(2, Buffer.from(dns, 'latin1')));
  }
  for (const ip of names.ips ?? []) parts.push(der.implicitPrimitive(7, ipToBytes(ip)));
  return der.sequence(...parts);
}

/** Reads GeneralNames, keeping URI, DNS and IP entries (others are skipped). Throws DerError when malformed. */
export function decodeAltNames(node: der.DerNode): AltNames {
  der.expectTag(node, der.TAG.SEQUENCE, 'general names');
  const out: AltNames = { uris: [], dns: [], ips: [] };
  for (const gn of der.children(node)) {
    if (gn.tag === TAG_URI) out.uris.push(der.contentOf(gn).toString('latin1'));
    else if (gn.tag === TAG_DNS) out.dns.push(der.contentOf(gn).toString('latin1'));
    else if (gn.tag === TAG_IP) {
      const c = der.contentOf(gn);
      if (c.length !== 4 && c.length !== 16) throw new der.DerError('IP address of the wrong length');
      out.ips.push(formatIp(c));
    }
  }
  return out;
}

/** NameConstraints with URI permitted subtrees in host form ("example.org"). */
export function encodeUriNameConstraints(domains: string[]): Buffer {
  const subtrees = domains.map((d) => {
    if (!/^\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(d)) {
      throw invalid(`The URI name constraint "${d}" must be a host name like "example.org" (not a spiffe:// URI).`);
    }
    return der.sequence(der.implicitPrimitive(6, Buffer.from(d, 'latin1')));
  });
  return der.sequence(der.tlv(0xa0, ...subtrees));
}

/** The URI bases of the permitted subtrees. Throws DerError when malformed. */
export function decodePermittedUris(node: der.DerNode): string[] {
  der.expectTag(node, der.TAG.SEQUENCE, 'name constraints');
  const out: string[] = [];
  for (const part of der.children(node)) {
    if (part.tag !== 0xa0) continue;
    for (const subtree of der.children(part)) {
      der.expectTag(subtree, der.TAG.SEQUENCE, 'general subtree');
      const base = der.children(subtree)[0];
      if (!base) throw new der.DerError('general subtree without a base');
      if (base.tag === TAG_URI) out.push(der.contentOf(base).toString('latin1'));
    }
  }
  return out;
}
