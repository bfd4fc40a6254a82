// How the outbound side opens mTLS to an upstream sidecar: our current credentials as the client
// certificate, the bundle as trust anchors, the CRLs in force checked here (tls/crl.ts says why not by
// OpenSSL), and — instead of hostname checking — the rule that the server proves the configured SPIFFE ID (a pattern). The error it produces names what was presented,
// so the log and the app's 502 can say it.
import type { PeerCertificate, ConnectionOptions } from 'node:tls';
import { parseCertificate } from '../../pki/certificate.js';
import { compileSpiffePattern } from '../../pki/spiffe.js';
import type { Credentials } from '../tls/credentials.js';
import { isRevoked } from '../tls/crl.js';
import { svidLeafViolation } from '../tls/identity.js';

/** Raised (through TLS) when the upstream's certificate is valid but names the wrong workload. */
export class UpstreamIdentityError extends Error {
  readonly code = 'ERR_MESHWARD_UPSTREAM_IDENTITY';
  readonly presented: string;

  constructor(message: string, presented: string) {
    super(message);
    this.name = 'UpstreamIdentityError';
    this.presented = presented;
  }
}

/** Returns the check Node runs after OpenSSL has verified the chain (checkServerIdentity). */
export function upstreamIdentityCheck(pattern: string): (host: string, cert: PeerCertificate) => Error | undefined {
  const matches = compileSpiffePattern(pattern);
  return (_host, peer) => {
    let cert;
    try {
      cert = parseCertificate(peer.raw);
    } catch (err) {
      return new UpstreamIdentityError(`upstream certificate cannot be parsed: ${(err as Error).message}`, '(unparseable)');
    }
    const presented = cert.uris.length > 0 ? cert.uris.join(', ') : cert.subjectString || '(no identity)';
    const violation = svidLeafViolation(cert, 'server');
    if (violation) return new UpstreamIdentityError(`upstream ${presented}: ${violation.message}`, presented);
    const id = cert.uris[0];
    if (id === undefined || !matches(id)) {
      return new UpstreamIdentityError(`upstream presented ${presented}, expected ${pattern}`, presented);
    }
    return undefined;
  };
}

/** TLS client options for one upstream with the given credentials. */
export function upstreamTlsOptions(
  creds: Credentials,
  upstream: { host: string; port: number },
  check: (host: string, cert: PeerCertificate) => Error | undefined,
  alpn: string[] | undefined,
): ConnectionOptions {
  const options: ConnectionOptions = {
    host: upstream.host,
    port: upstream.port,
    cert: creds.files.cert,
    key: creds.files.key,
    ca: creds.files.ca,
    rejectUnauthorized: true,
    checkServerIdentity: (host, cert) => revokedUpstream(creds, cert) ?? check(host, cert),
    minVersion: 'TLSv1.2',
  };
  // SNI only for names: an IP literal as server name is not allowed by RFC 6066.
  if (!/^[\d.]+$/.test(upstream.host) && !upstream.host.includes(':')) options.servername = upstream.host;
  if (alpn) options.ALPNProtocols = alpn;
  return options;
}

/** The error for an upstream whose certificate (or an intermediate of it) a CRL in force lists. */
function revokedUpstream(creds: Credentials, peer: PeerCertificate): Error | undefined {
  if (creds.trust.revoked.size === 0) return undefined;
  let leaf;
  try {
    leaf = parseCertificate(peer.raw);
  } catch {
    return undefined; // the identity check says it cannot be parsed
  }
  const chain = (): Buffer[] => {
    const out: Buffer[] = [];
    let c: PeerCertificate | undefined = peer;
    while (c?.raw && out.length < 10 && !out.some((d) => d.equals(c!.raw))) {
      out.push(c.raw);
      c = (c as { issuerCertificate?: PeerCertificate }).issuerCertificate;
    }
    return out;
  };
  if (!isRevoked(creds.trust.revoked, { issuerHex: leaf.issuerDer.toString('hex'), serialHex: leaf.serialHex }, chain)) return undefined;
  const presented = leaf.uris.join(', ') || leaf.subjectString || '(no identity)';
  return new UpstreamIdentityError(`upstream ${presented} presented a revoked certificate (serial ${leaf.serialHex}, listed in crl.pem)`, presented);
}

/** Why an upstream attempt failed, in words for the log and the app's 502. */
export function describeUpstreamError(err: Error, upstream: string): string {
  const identity = err as Partial<UpstreamIdentityError>;
  if (identity.code === 'ERR_MESHWARD_UPSTREAM_IDENTITY') return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return `upstream ${upstream} refused the connection`;
  return `upstream ${upstream}: ${err.message}`;
}
