// `meshward inspect`: certificates, chains, CSRs and CRLs described in words, as JSON-able objects and as
// human text. Pure: the caller passes the bytes and the current time.
import { invalid, MeshwardError } from '../errors.js';
import { parseCertificate, verifyCertificateSignature, type ParsedCertificate } from './certificate.js';
import { parseCrl, type ParsedCrl } from './crl.js';
import { parseCsr, type ParsedCsr } from './csr.js';
import { EXTENSION_NAMES, SIGNATURE_NAMES } from './oids.js';
import { decodePem, looksLikePem } from './pem.js';

/** "3649d 23h", "59m 58s", "12s": the largest unit and the next one when it is not zero. */
export function describeDuration(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const abs = Math.abs(ms);
  const first = units.findIndex(([, size]) => abs >= size);
  if (first < 0) return '0s';
  const [name, size] = units[first]!;
  const parts = [`${Math.floor(abs / size)}${name}`];
  const next = units[first + 1];
  if (next) {
    const n = Math.floor((abs % size) / next[1]);
    if (n > 0) parts.push(`${n}${next[0]}`);
  }
  return parts.join(' ');
}

function hex(b: Buffer | undefined): string | undefined {
  return b?.toString('hex').match(/../g)?.join(':');
}

function certificateRole(c: ParsedCertificate): string {
  if (!c.isCA) return 'leaf';
  return c.subjectDer.equals(c.issuerDer) ? 'root CA' : 'intermediate CA';
}

function describeCertificate(c: ParsedCertificate, now: Date, next: ParsedCertificate | undefined): Record<string, unknown> {
  const t = now.getTime();
  const status = t < c.notBefore.getTime() ? 'not yet valid' : t > c.notAfter.getTime() ? 'expired' : 'valid';
  const out: Record<string, unknown> = {
    kind: 'certificate',
    role: certificateRole(c),
    identity: c.uris.find((u) => u.startsWith('spiffe://')) ?? (c.subjectString || undefined),
    subject: c.subjectString,
    issuer: c.issuerString,
    serial: c.serialHex,
    uris: c.uris,
    dns: c.dns,
    ips: c.ips,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    status,
    timeLeft:
      status === 'valid'
        ? describeDuration(c.notAfter.getTime() - t)
        : status === 'expired'
          ? `expired ${describeDuration(t - c.notAfter.getTime())} ago`
          : `valid in ${describeDuration(c.notBefore.getTime() - t)}`,
    keyType: c.keyType,
    signatureAlgorithm: SIGNATURE_NAMES[c.signatureAlgorithmOid] ?? c.signatureAlgorithmOid,
    isCA: c.isCA,
    ...(c.pathLen !== undefined ? { pathLen: c.pathLen } : {}),
    keyUsage: c.keyUsageNames,
    extKeyUsage: c.extKeyUsageOids.map((o) => (o === '1.3.6.1.5.5.7.3.1' ? 'serverAuth' : o === '1.3.6.1.5.5.7.3.2' ? 'clientAuth' : o)),
    permittedUriDomains: c.permittedUriDomains,
    subjectKeyId: hex(c.subjectKeyId),
    authorityKeyId: hex(c.authorityKeyId),
    extensions: c.extensions.map((e) => ({ name: EXTENSION_NAMES[e.oid] ?? e.oid, critical: e.critical })),
    fingerprintSha256: c.fingerprintSha256,
  };
  if (next && c.issuerDer.equals(next.subjectDer)) {
    out.issuerInFile = verifyCertificateSignature(c, next.publicKey) ? 'next certificate (signature verified)' : 'next certificate (SIGNATURE DOES NOT VERIFY)';
  } else if (c.subjectDer.equals(c.issuerDer)) {
    out.issuerInFile = verifyCertificateSignature(c, c.publicKey) ? 'self-signed (signature verified)' : 'self-signed (SIGNATURE DOES NOT VERIFY)';
  }
  return out;
}

function describeCsr(r: ParsedCsr): Record<string, unknown> {
  return {
    kind: 'certificate request',
    identity: r.uris.find((u) => u.startsWith('spiffe://')) ?? (r.subjectString || undefined),
    subject: r.subjectString,
    uris: r.uris,
    dns: r.dns,
    ips: r.ips,
    keyType: r.keyType,
    signatureAlgorithm: SIGNATURE_NAMES[r.signatureAlgorithmOid] ?? r.signatureAlgorithmOid,
    signature: 'verified',
  };
}

function describeCrl(l: ParsedCrl, now: Date): Record<string, unknown> {
  const t = now.getTime();
  return {
    kind: 'crl',
    issuer: l.issuerString,
    crlNumber: l.crlNumber?.toString(),
    thisUpdate: l.thisUpdate.toISOString(),
    nextUpdate: l.nextUpdate?.toISOString(),
    status: l.nextUpdate && t > l.nextUpdate.getTime() ? 'stale' : t < l.thisUpdate.getTime() ? 'not yet valid' : 'current',
    authorityKeyId: hex(l.authorityKeyId),
    signatureAlgorithm: SIGNATURE_NAMES[l.signatureAlgorithmOid] ?? l.signatureAlgorithmOid,
    revokedCount: l.revoked.length,
    revoked: l.revoked.map((r) => ({ serial: r.serialHex, revokedAt: r.revokedAt.toISOString(), reason: r.reason })),
  };
}

type Parsed =
  | { kind: 'certificate'; value: ParsedCertificate }
  | { kind: 'csr'; value: ParsedCsr }
  | { kind: 'crl'; value: ParsedCrl }
  | { kind: 'other'; value: Record<string, unknown> };

function parseDer(der: Buffer): Parsed {
  // DER input has no label: try each kind, and report the certificate error (the most common input).
  let firstError: unknown;
  try {
    return { kind: 'certificate', value: parseCertificate(der) };
  } catch (err) {
    firstError = err;
  }
  try {
    return { kind: 'crl', value: parseCrl(der) };
  } catch {
    /* try the next kind */
  }
  try {
    return { kind: 'csr', value: parseCsr(der) };
  } catch (err) {
    if (err instanceof MeshwardError && /signature|RSA|not supported/.test(err.message)) throw err;
  }
  if (firstError instanceof MeshwardError) {
    throw invalid('The input is not a certificate, CSR or CRL in PEM or DER form.', firstError);
  }
  throw invalid('The input is not a certificate, CSR or CRL in PEM or DER form.');
}

/** Certificates, chains, CSRs and CRLs in words (JSON-able). Private keys are named, never shown. */
export function describePem(input: Buffer, now: Date): object[] {
  if (!Buffer.isBuffer(input) || input.length === 0) throw invalid('The input is empty: expected a certificate, CSR or CRL.');
  const parsed: Parsed[] = [];
  if (looksLikePem(input)) {
    for (const block of decodePem(input)) {
      switch (block.label) {
        case 'CERTIFICATE':
        case 'TRUSTED CERTIFICATE':
          parsed.push({ kind: 'certificate', value: parseCertificate(block.der) });
          break;
        case 'CERTIFICATE REQUEST':
        case 'NEW CERTIFICATE REQUEST':
          parsed.push({ kind: 'csr', value: parseCsr(block.der) });
          break;
        case 'X509 CRL':
          parsed.push({ kind: 'crl', value: parseCrl(block.der) });
          break;
        default:
          parsed.push({
            kind: 'other',
            value: { kind: 'other', label: block.label, note: /PRIVATE KEY/.test(block.label) ? 'a private key (not shown)' : 'not described' },
          });
      }
    }
  } else {
    parsed.push(parseDer(input));
  }
  return parsed.map((p, i) => {
    switch (p.kind) {
      case 'certificate': {
        const next = parsed[i + 1];
        return describeCertificate(p.value, now, next?.kind === 'certificate' ? next.value : undefined);
      }
      case 'csr':
        return describeCsr(p.value);
      case 'crl':
        return describeCrl(p.value, now);
      default:
        return p.value;
    }
  });
}

const LABELS: Record<string, string> = {
  role: 'role',
  identity: 'identity',
  subject: 'subject',
  issuer: 'issuer',
  serial: 'serial',
  uris: 'URI SANs',
  dns: 'DNS SANs',
  ips: 'IP SANs',
  notBefore: 'not before',
  notAfter: 'not after',
  status: 'status',
  timeLeft: 'time left',
  keyType: 'key type',
  signatureAlgorithm: 'signature algorithm',
  isCA: 'CA',
  pathLen: 'path length',
  keyUsage: 'key usage',
  extKeyUsage: 'extended key usage',
  permittedUriDomains: 'permitted URI domains',
  subjectKeyId: 'subject key id',
  authorityKeyId: 'authority key id',
  extensions: 'extensions',
  fingerprintSha256: 'SHA-256 fingerprint',
  issuerInFile: 'issued by',
  crlNumber: 'CRL number',
  thisUpdate: 'this update',
  nextUpdate: 'next update',
  revokedCount: 'revoked',
  revoked: 'revoked serials',
  signature: 'CSR signature',
  label: 'PEM label',
  note: 'note',
};

function formatValue(key: string, value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value)) {
    if (value.length === 0) return undefined;
    if (key === 'extensions') {
      return (value as { name: string; critical: boolean }[]).map((e) => (e.critical ? `${e.name} (critical)` : e.name)).join(', ');
    }
    if (key === 'revoked') {
      return (value as { serial: string; revokedAt: string; reason: string }[])
        .map((r) => `\n      ${r.serial}  ${r.revokedAt}  ${r.reason}`)
        .join('');
    }
    return value.join(', ');
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** Human text for describePem's items. */
export function formatDescription(items: object[]): string {
  const blocks = items.map((item, i) => {
    const rec = item as Record<string, unknown>;
    const title = `[${i + 1}] ${String(rec.kind ?? 'item')}${rec.role ? ` (${String(rec.role)})` : ''}`;
    const lines = [title];
    for (const [key, value] of Object.entries(rec)) {
      if (key === 'kind' || key === 'role') continue;
      const text = formatValue(key, value);
      if (text !== undefined) lines.push(`  ${(LABELS[key] ?? key).padEnd(22)} ${text}`);
    }
    return lines.join('\n');
  });
  return blocks.join('\n\n') + '\n';
}
