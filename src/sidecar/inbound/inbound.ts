// The inbound mTLS listener: TLS 1.2/1.3 with a required client certificate checked against ca.crt
// (and the CRLs of crl.pem, by tls/crl.ts), every refusal logged and counted with its reason, then the X509-SVID leaf rules, then
// the caller's Identity and Principal computed once, and the socket handed to the app forwarder.
// Verification runs with rejectUnauthorized:false on purpose: OpenSSL would otherwise drop a bad client
// without telling us why.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HostPort, Limits } from '../config.js';
import type { Connection } from './connection.js';
import { ConnectionLifetimes, type EndReason } from './lifetimes.js';
import type { Credentials } from '../tls/credentials.js';
import { isRevoked } from '../tls/crl.js';
import { classifyRefusal, tlsErrorReason } from '../tls/handshake.js';
import type { HandshakeFailureReason } from '../tls/handshake.js';
import { xfccValue } from '../tls/identity.js';
import type { Identity } from '../tls/identity.js';
import { ANONYMOUS } from '../policy/policy.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import { PeerCertificates, peerLeafDer } from '../tls/peer-certificates.js';
import type { Policy } from '../policy/policy.js';

/** The Identity of a connection without a client certificate (inbound.clientCertificate: optional). */
export const ANONYMOUS_IDENTITY: Identity = Object.freeze({ ...ANONYMOUS, dns: [], subject: '', serialHex: '', fingerprint: '' });
/** A connection without a certificate has no notAfter: only limits.maxConnectionAge ends it (the latest Date). */
const NO_CERTIFICATE_EXPIRY = new Date(8.64e15);

export interface InboundOptions {
  listen: HostPort;
  /** ALPN offered to clients: ['h2', 'http/1.1'] for HTTP apps, none for tcp:// apps. */
  alpn?: string[];
  /** tcp:// apps need half-open sockets so one direction can end while the other still flows. */
  allowHalfOpen: boolean;
  limits: Limits;
  /** optional: a caller without a certificate is let in as ANONYMOUS_IDENTITY (a bad certificate is still refused). */
  clientCertificate?: 'require' | 'optional';
  credentials: Credentials;
  policy: () => Policy;
  logger: Logger;
  metrics: SidecarMetrics;
  /** Receives every verified connection (HttpFrontend.accept or the tcp forwarder). */
  onConnection: (socket: TLSSocket, conn: Connection) => void;
  /**
   * Ends a connection gracefully (HTTP/2 GOAWAY, Connection: close, TCP close) because its certificate
   * was revoked, expired or is no longer trusted, or it reached limits.maxConnectionAge. A connection
   * still open limits.drainTimeout later is closed.
   */
  onEnd: (socket: TLSSocket, reason: EndReason) => void;
}

export class InboundListener {
  readonly server: Server;
  private readonly opts: InboundOptions;
  private credentials: Credentials;
  private nextId = 1;
  private readonly sockets = new Set<TLSSocket>();
  private readonly peers = new PeerCertificates();
  /** x-forwarded-client-cert values by peer Identity, for the sidecar's own SPIFFE ID `xfccBy`. */
  private xfccValues = new WeakMap<Identity, string>();
  private xfccBy = '';
  private readonly lifetimes: ConnectionLifetimes<TLSSocket>;

  constructor(opts: InboundOptions) {
    this.opts = opts;
    this.credentials = opts.credentials;
    this.server = createServer({
      ...opts.credentials.tlsOptions,
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: opts.limits.handshakeTimeoutMs,
      allowHalfOpen: opts.allowHalfOpen,
      // A proxy forwards what it has at once; Nagle would hold the last handshake flight (the session
      // tickets) and small responses back until the peer's delayed ACK.
      noDelay: true,
      ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
    });
    this.server.maxConnections = opts.limits.maxConnections;
    this.lifetimes = new ConnectionLifetimes(opts.limits.maxConnectionAgeMs, (socket, reason) => this.endConnection(socket, reason));
    // An accept() failure (ENFILE, ENOMEM, ...) is emitted on the server; without a listener it would end
    // the process. node keeps listening, so logging is all there is to do. EMFILE does not get here:
    // libuv keeps a spare descriptor and uses it to accept and close the waiting connections itself
    // (seen with `ulimit -n 160` and 200 callers: refused, no 'error' event).
    this.server.on('error', (err: NodeJS.ErrnoException) => this.onServerError(err));
    this.server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.refuse(socket, tlsErrorReason(err), err.message.split('\n')[0] ?? String(err.code));
    });
    this.server.on('drop', (data?: { remoteAddress?: string }) => {
      opts.logger.warn({ event: 'connection_dropped', peer: data?.remoteAddress, maxConnections: opts.limits.maxConnections }, 'connection refused: maxConnections reached');
    });
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.listening = false;
      this.server.once('error', onError);
      this.server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        this.listening = true;
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Swaps credentials for new handshakes; open connections keep theirs. Session tickets survive a
   * leaf-only rotation, but when the bundle or CRL changed they are re-keyed: a resumed session skips
   * chain and CRL checks, so it must not outlive the trust decision it was made under.
   */
  updateCredentials(next: Credentials): void {
    const trustChanged = next.trustDigest !== this.credentials.trustDigest;
    const ticketKeys = this.server.getTicketKeys();
    this.server.setSecureContext(next.tlsOptions);
    this.server.setTicketKeys(trustChanged ? randomBytes(48) : ticketKeys);
    this.credentials = next;
    // Open connections were accepted under the old trust: the ones it no longer covers end now.
    if (trustChanged) this.lifetimes.review(next.trust, peerChain);
  }

  /** Stops accepting new connections; open ones continue. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  destroyAll(): void {
    this.lifetimes.close();
    for (const s of this.sockets) s.destroy();
  }

  private listening = false;

  private acceptFailures = 0;
  private acceptFailureLogged = 0;

  /** An accept() failure: logged at most once a second (EMFILE repeats for every waiting client). */
  private onServerError(err: NodeJS.ErrnoException): void {
    if (!this.listening) return; // listen() reports its own failure
    this.acceptFailures++;
    const now = Date.now();
    if (now - this.acceptFailureLogged < 1000) return;
    this.acceptFailureLogged = now;
    this.opts.logger.warn(
      { event: 'accept_failed', code: err.code, error: err.message, failures: this.acceptFailures },
      `accepting connections fails (${err.code ?? err.message}): callers are refused until it recovers`,
    );
    this.acceptFailures = 0;
  }

  private endConnection(socket: TLSSocket, reason: EndReason): void {
    const { logger, metrics, limits } = this.opts;
    metrics.connectionsEnded.labels({ reason }).inc();
    logger.info(
      { event: 'connection_ended', peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason },
      reason === 'max_age' ? 'connection reached limits.maxConnectionAge: ending it' : `the peer certificate is ${reason}: ending its connection`,
    );
    this.opts.onEnd(socket, reason);
    // Whatever is still running on it gets the drain time a shutdown would give it, then the socket goes.
    if (!socket.destroyed) setTimeout(() => socket.destroy(), limits.drainTimeoutMs).unref();
  }

  private refuse(socket: TLSSocket, reason: HandshakeFailureReason, detail: string): void {
    this.opts.metrics.handshakeFailures.labels({ reason }).inc();
    this.opts.logger.warn(
      { event: 'handshake_refused', peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason, detail },
      `TLS handshake refused: ${reason}`,
    );
    socket.destroy();
  }

  private onSecureConnection(socket: TLSSocket): void {
    const raw = peerLeafDer(socket);
    if (!raw && this.opts.clientCertificate === 'optional') {
      this.admit(socket, ANONYMOUS_IDENTITY, '', NO_CERTIFICATE_EXPIRY);
      return;
    }
    if (!socket.authorized) {
      const reason = raw ? classifyRefusal(peerChain(socket), this.credentials.trust, new Date(), socket.authorizationError) : 'no_certificate';
      this.refuse(socket, reason, String(socket.authorizationError ?? 'no client certificate'));
      return;
    }
    if (!raw) {
      this.refuse(socket, 'no_certificate', 'no client certificate');
      return;
    }
    const verdict = this.peers.judge(raw);
    if (!verdict.ok) {
      this.refuse(socket, verdict.reason, verdict.message);
      return;
    }
    const identity = verdict.identity;
    if (isRevoked(this.credentials.trust.revoked, { issuerHex: verdict.issuerHex, issuerKeyIdHex: verdict.issuerKeyIdHex, serialHex: identity.serialHex }, () => peerChain(socket))) {
      this.refuse(socket, 'revoked', `certificate ${identity.serialHex} of ${identity.id} is listed in crl.pem`);
      return;
    }
    const ownId = this.credentials.identity.spiffeId ?? '';
    if (ownId !== this.xfccBy) {
      this.xfccBy = ownId;
      this.xfccValues = new WeakMap();
    }
    let xfcc = this.xfccValues.get(identity);
    if (xfcc === undefined) {
      xfcc = xfccValue(identity, ownId);
      this.xfccValues.set(identity, xfcc);
    }
    this.admit(socket, identity, xfcc, verdict.notAfter);
  }

  /** Hands a verified (or, with clientCertificate: optional, certificate-less) connection on. */
  private admit(socket: TLSSocket, identity: Identity, xfcc: string, notAfter: Date): void {
    const policy = this.opts.policy();
    const conn: Connection = {
      id: this.nextId++,
      remoteAddress: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
      identity,
      principal: policy.principal(identity),
      policy,
      xfcc,
    };
    this.sockets.add(socket);
    this.lifetimes.add(socket, notAfter);
    this.opts.metrics.openConnections.inc();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.lifetimes.delete(socket);
      this.opts.metrics.openConnections.dec();
    });
    if (this.opts.logger.isLevelEnabled('debug')) {
      this.opts.logger.debug(
        { event: 'connection', conn: conn.id, peer: conn.remoteAddress, identity: identity.id, resumed: socket.isSessionReused(), alpn: socket.alpnProtocol || undefined },
        'connection accepted',
      );
    }
    this.opts.onConnection(socket, conn);
  }
}

/** The certificates the peer sent, leaf first (node links them through issuerCertificate). */
function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c = socket.getPeerCertificate(true) as { raw?: Buffer; issuerCertificate?: unknown } | null;
  while (c && c.raw && out.length < 10) {
    if (out.some((d) => d.equals(c!.raw!))) break; // a self-signed certificate is its own issuer
    out.push(c.raw);
    c = c.issuerCertificate as typeof c;
  }
  return out;
}
