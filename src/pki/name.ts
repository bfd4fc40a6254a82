// X.501 distinguished names: the small subset meshward writes (CN, OU…, O, C) and a reader for any name
// a foreign certificate carries, with RFC 4514 text (most specific attribute first, as OpenSSL's
// `-nameopt RFC2253` and Go print it).
import { invalid } from '../errors.js';
import * as der from './der.js';
import { OID } from './oids.js';

export interface DistinguishedName {
  cn?: string;
  ou?: string[];
  o?: string;
  c?: string;
}

const SHORT_NAMES: Record<string, string> = {
  [OID.commonName]: 'CN',
  [OID.organizationalUnitName]: 'OU',
  [OID.organizationName]: 'O',
  [OID.countryName]: 'C',
  [OID.localityName]: 'L',
  [OID.stateOrProvinceName]: 'ST',
  [OID.streetAddress]: 'STREET',
  [OID.domainComponent]: 'DC',
  [OID.userId]: 'UID',
  [OID.serialNumber]: 'SERIALNUMBER',
  [OID.emailAddress]: 'emailAddress',
  [OID.title]: 'title',
  [OID.givenName]: 'GN',
  [OID.surname]: 'SN',
};

/** RFC 4514 §2.4 escaping of one attribute value. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\"+,;<>]/g, (c) => '\\' + c).replace(/\0/g, '\\00');
  if (out.startsWith('#') || out.startsWith(' ')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

/** "CN=x,OU=a,OU=b,O=org,C=US" (RFC 4514: most specific first; "" for an empty name). */
export function formatName(n: DistinguishedName): string {
  const parts: string[] = [];
  if (n.cn !== undefined) parts.push(`CN=${escapeDnValue(n.cn)}`);
  for (const ou of n.ou ?? []) parts.push(`OU=${escapeDnValue(ou)}`);
  if (n.o !== undefined) parts.push(`O=${escapeDnValue(n.o)}`);
  if (n.c !== undefined) parts.push(`C=${escapeDnValue(n.c)}`);
  return parts.join(',');
}

export function isEmptyName(n: DistinguishedName): boolean {
  return n.cn === undefined && (n.ou ?? []).length === 0 && n.o === undefined && n.c === undefined;
}

function checkValue(kind: string, value: string, max: number): void {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`The subject ${kind} must not be empty.`);
  if (value.length > max) throw invalid(`The subject ${kind} "${value.slice(0, 40)}…" is longer than ${max} characters.`);
  if (/[\0-\x1f\x7f]/.test(value)) throw invalid(`The subject ${kind} must not contain control characters.`);
}

function rdn(oidText: string, value: Buffer): Buffer {
  return der.set(der.sequence(der.oid(oidText), value));
}

/**
 * DER of the Name, least specific first (C, O, OU…, CN) so that the RFC 4514 text reads CN first and OUs in
 * the given order. Values are UTF8String; the country is a two-letter PrintableString.
 */
export function encodeName(n: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  if (n.c !== undefined) {
    if (!/^[A-Z]{2}$/.test(n.c)) throw invalid(`The subject country "${n.c}" must be two capital letters (ISO 3166), like "US".`);
    rdns.push(rdn(OID.countryName, der.printableString(n.c)));
  }
  if (n.o !== undefined) {
    checkValue('organization (O)', n.o, 64);
    rdns.push(rdn(OID.organizationName, der.utf8String(n.o)));
  }
  const ous = n.ou ?? [];
  for (let i = ous.length - 1; i >= 0; i--) {
    checkValue('organizational unit (OU)', ous[i]!, 64);
    rdns.push(rdn(OID.organizationalUnitName, der.utf8String(ous[i]!)));
  }
  if (n.cn !== undefined) {
    checkValue('common name (CN)', n.cn, 64);
    rdns.push(rdn(OID.commonName, der.utf8String(n.cn)));
  }
  return der.sequence(...rdns);
}

export interface DecodedName {
  name: DistinguishedName;
  /** RFC 4514 text of every attribute, including ones DistinguishedName has no field for. */
  text: string;
}

/** Reads a Name. Throws DerError on malformed input (the caller words the error). */
export function decodeName(node: der.DerNode): DecodedName {
  der.expectTag(node, der.TAG.SEQUENCE, 'name');
  const name: DistinguishedName = {};
  const ous: string[] = [];
  const rdnTexts: string[] = [];
  for (const rdnNode of der.children(node)) {
    der.expectTag(rdnNode, der.TAG.SET, 'relative distinguished name');
    const atvs = der.children(rdnNode);
    if (atvs.length === 0) throw new der.DerError('empty relative distinguished name');
    const texts: string[] = [];
    for (const atv of atvs) {
      der.expectTag(atv, der.TAG.SEQUENCE, 'attribute');
      const [typeNode, valueNode, extra] = der.children(atv);
      if (!typeNode || !valueNode || extra) throw new der.DerError('malformed attribute');
      const type = der.readOid(typeNode);
      const short = SHORT_NAMES[type];
      let value: string;
      try {
        value = der.readString(valueNode);
      } catch {
        texts.push(`${short ?? type}=#${der.bytesOf(valueNode).toString('hex')}`);
        continue;
      }
      texts.push(`${short ?? type}=${short ? escapeDnValue(value) : '#' + der.bytesOf(valueNode).toString('hex')}`);
      if (type === OID.commonName) name.cn = value; // the most specific (last) one wins, as in Go
      else if (type === OID.organizationalUnitName) ous.push(value);
      else if (type === OID.organizationName) name.o = value;
      else if (type === OID.countryName) name.c = value;
    }
    rdnTexts.push(texts.join('+'));
  }
  if (ous.length > 0) name.ou = ous.reverse();
  return { name, text: rdnTexts.reverse().join(',') };
}
