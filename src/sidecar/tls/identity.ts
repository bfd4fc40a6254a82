// Who is on the other end of a connection: the peer certificate reduced, once per connection, to the
// names policy and the app care about, plus the X509-SVID leaf rules OpenSSL does not enforce
// (it accepts a CA certificate as a client leaf, and several URI SANs).
import type { ParsedCertificate } from '../../pki/certificate.js';
import { isSpiffeId } from '../../pki/spiffe.js';
import type { Subject } from '../policy/policy.js';

export interface Identity extends Subject {
  dns: string[];
  /** RFC 4514 subject string ("CN=x,OU=a,O=b"), "" when the subject is empty. */
  subject: string;
  serialHex: string;
  /** Lowercase hex SHA-256 of the certificate DER. */
  fingerprint: string;
  /** The URI SAN, when there is exactly one (a SPIFFE ID or not). */
  uri?: string;
}

export function identityFromCertificate(cert: ParsedCertificate): Identity {
  const uri = cert.uris.length === 1 ? cert.uris[0] : undefined;
  const spiffeId = uri !== undefined && isSpiffeId(uri) ? uri : undefined;
  const subject = cert.subjectString;
  const identity: Identity = {
    // A certificate with neither a SPIFFE ID nor a subject still needs a stable, non-empty name for logs.
    id: spiffeId ?? (subject !== '' ? subject : `sha256:${cert.fingerprintSha256}`),
    ou: cert.subject.ou ?? [],
    dns: cert.dns,
    subject,
    serialHex: cert.serialHex,
    fingerprint: cert.fingerprintSha256,
  };
  if (spiffeId !== undefined) identity.spiffeId = spiffeId;
  if (cert.subject.cn !== undefined) identity.cn = cert.subject.cn;
  if (uri !== undefined) identity.uri = uri;
  return identity;
}

/** A broken X509-SVID leaf rule: `reason` is the metrics label, `message` the sentence for the log. */
export interface LeafViolation {
  reason: 'ca_as_leaf' | 'bad_key_usage' | 'multiple_uri_sans' | 'invalid_spiffe_id';
  message: string;
}

export function svidLeafViolation(cert: ParsedCertificate, use: 'client' | 'server'): LeafViolation | undefined {
  if (cert.isCA) {
    return { reason: 'ca_as_leaf', message: 'the certificate is a CA certificate (basicConstraints cA=true), not a workload leaf' };
  }
  const signing = cert.keyUsage.filter((u) => u === 'keyCertSign' || u === 'cRLSign');
  if (signing.length > 0) {
    return { reason: 'bad_key_usage', message: `a leaf must not have keyUsage ${signing.join(' or ')}` };
  }
  const needed = use === 'client' ? 'clientAuth' : 'serverAuth';
  if (cert.extKeyUsage.length > 0 && !cert.extKeyUsage.includes(needed)) {
    return {
      reason: 'bad_key_usage',
      message: `extKeyUsage is ${cert.extKeyUsage.join(', ')} without ${needed}, so it cannot be used as a TLS ${use}`,
    };
  }
  if (cert.uris.length > 1) {
    return { reason: 'multiple_uri_sans', message: `an X509-SVID has exactly one URI SAN, this certificate has ${cert.uris.length}` };
  }
  if (cert.uris.length === 1 && !isSpiffeId(cert.uris[0]!)) {
    return { reason: 'invalid_spiffe_id', message: `the URI SAN ${JSON.stringify(cert.uris[0])} is not a valid SPIFFE ID` };
  }
  return undefined;
}

/** The X509-SVID leaf rule a certificate breaks for `use`, as a sentence; undefined when it is a valid leaf. */
export function svidLeafProblem(cert: ParsedCertificate, use: 'client' | 'server'): string | undefined {
  return svidLeafViolation(cert, use)?.message;
}

// XFCC (Envoy): elements separated by ';', key=value; a value holding ',', ';', '=' or '"' is
// double-quoted with '"' and '\' backslash-escaped. Envoy always quotes Subject.
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function xfccText(value: string): string {
  return /[,;="\\]/.test(value) ? quoted(value) : value;
}

/** The x-forwarded-client-cert value Envoy would send: By=…;Hash=…;Subject="…";URI=…;DNS=… */
export function xfccValue(peer: Identity, by: string): string {
  const parts: string[] = [];
  if (by !== '') parts.push(`By=${xfccText(by)}`);
  parts.push(`Hash=${peer.fingerprint}`);
  parts.push(`Subject=${quoted(peer.subject)}`);
  if (peer.uri !== undefined) parts.push(`URI=${xfccText(peer.uri)}`);
  for (const dns of peer.dns) parts.push(`DNS=${xfccText(dns)}`);
  return parts.join(';');
}
