// How the outbound side opens mTLS to an upstream sidecar: our current credentials as the client
// certificate, the bundle as trust anchors, the CRLs in force checked here (tls/crl.ts says why not by
// OpenSSL), and — instead of hostname checking — the rule that the server proves the configured SPIFFE ID (a pattern). The error it produces names what was presented,
// so the log and the app's 502 can say it.
import type { PeerCertificate, ConnectionOptions } from 'node:tls';
import { parseCertificate } from '../../pki/certificate.js';
import { compileSpiffePattern } from '../../pki/spiffe.js';
import type { Credentials } from '../tls/credentials.js';
import { certificateRef, isRevoked } from '../tls/crl.js';
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

/** An upstream presented a certificate a CRL in force lists: a TLS-level refusal, not an identity mismatch. */
export class UpstreamRevokedError extends Error {
  readonly code = 'ERR_MESHWARD_UPSTREAM_REVOKED';

  constructor(message: string) {
    super(message);
    this.name = 'UpstreamRevokedError';
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
  if (creds.trust.revoked.empty) return undefined;
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
  if (!isRevoked(creds.trust.revoked, certificateRef(leaf), chain)) return undefined;
  const presented = leaf.uris.join(', ') || leaf.subjectString || '(no identity)';
  return new UpstreamRevokedError(`upstream ${presented} presented a revoked certificate (serial ${leaf.serialHex}, listed in crl.pem)`);
}

/** The upstream did not finish connecting (TCP + TLS), or went silent, within the configured time. */
export class UpstreamTimeout extends Error {
  readonly code = 'ERR_MESHWARD_UPSTREAM_TIMEOUT';

  constructor(
    readonly phase: 'connect' | 'idle',
    upstream: string,
    ms: number,
  ) {
    super(
      phase === 'connect'
        ? `upstream ${upstream} did not complete the connection (TCP and TLS) within ${ms} ms (connectTimeout)`
        : `upstream ${upstream} sent nothing for ${ms} ms (idleTimeout)`,
    );
    this.name = 'UpstreamTimeout';
  }
}

export type OutboundFailure = 'connect_refused' | 'connect_timeout' | 'idle_timeout' | 'identity_mismatch' | 'tls_refused' | 'no_credentials' | 'upstream_error';

/** The metrics label of an upstream failure, and the status the app gets for it (504 for timeouts). */
export function classifyUpstreamError(err: Error): { reason: OutboundFailure; status: 502 | 504 } {
  const e = err as Partial<UpstreamTimeout> & NodeJS.ErrnoException;
  if (e.code === 'ERR_MESHWARD_UPSTREAM_TIMEOUT') return { reason: e.phase === 'connect' ? 'connect_timeout' : 'idle_timeout', status: 504 };
  if (e.code === 'ERR_MESHWARD_UPSTREAM_IDENTITY') return { reason: 'identity_mismatch', status: 502 };
  if (e.code === 'ERR_MESHWARD_UPSTREAM_REVOKED') return { reason: 'tls_refused', status: 502 };
  if (e.code === 'ERR_MESHWARD_NO_CREDENTIALS') return { reason: 'no_credentials', status: 502 };
  if (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return { reason: 'connect_refused', status: 502 };
  if (e.code === 'ETIMEDOUT') return { reason: 'connect_timeout', status: 504 };
  if (/CERT|SSL|TLS|ALERT|SIGNATURE|SELF_SIGNED|UNABLE_TO|ISSUER/i.test(e.code ?? '')) return { reason: 'tls_refused', status: 502 };
  return { reason: 'upstream_error', status: 502 };
}

/** Why an upstream attempt failed, in words for the log and the app's 502. */
export function describeUpstreamError(err: Error, upstream: string): string {
  const identity = err as Partial<UpstreamIdentityError>;
  if (identity.code === 'ERR_MESHWARD_UPSTREAM_IDENTITY' || (identity.code as string | undefined) === 'ERR_MESHWARD_UPSTREAM_REVOKED' || identity.code === 'ERR_MESHWARD_UPSTREAM_TIMEOUT' || identity.code === 'ERR_MESHWARD_NO_CREDENTIALS') return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return `upstream ${upstream} refused the connection`;
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    return `upstream ${upstream} presented a certificate that does not chain to ca.crt (${code})`;
  }
  return `upstream ${upstream}: ${err.message}`;
}

/** TLS sockets that finished their handshake once: a pooled socket handed out again needs no connect timer. */
const established = new WeakSet<object>();

/**
 * Fails a fresh upstream socket that has not completed TCP and TLS within `ms`. `fail` receives the
 * UpstreamTimeout (the request or tunnel is destroyed with it).
 */
export function limitConnectTime(socket: import('node:net').Socket, upstream: string, ms: number, fail: (err: Error) => void): void {
  if (established.has(socket)) return;
  const timer = setTimeout(() => fail(new UpstreamTimeout('connect', upstream, ms)), ms);
  const done = (): void => {
    clearTimeout(timer);
    established.add(socket);
  };
  socket.once('secureConnect', done);
  socket.once('close', () => clearTimeout(timer));
}
