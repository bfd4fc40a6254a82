// The CA server's own TLS identity: a certificate the CA issues to itself (SPIFFE ID spiffe://TD/meshward/ca
// plus DNS/IP SANs for the address it listens on), renewed at 2/3 of its lifetime without a restart. It is
// handed to grpc-js as a CertificateProvider (grpc-js 1.14 `experimental.createCertificateProviderServerCredentials`):
// every update becomes `http2Server.setSecureContext()`, so new handshakes get the new certificate while
// open connections carry on. The same provider supplies the trust bundle grpc-js uses to verify client
// certificates (renew-by-mTLS), updated when a root rotation changes bundle.crt.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Authority } from '../authority.js';
import { checkDnsNames } from '../rules.js';
import { caServerSpiffeId } from './proto.js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** Subject alternative names for a listen host: the host itself, and loopback + host name for a wildcard. */
export function servingNames(listenHost: string, extra: string[] = []): { dns: string[]; ips: string[] } {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (name: string) => {
    const bare = name.replace(/^\[|\]$/g, '');
    if (isIP(bare)) ips.add(bare);
    else {
      try {
        dns.add(checkDnsNames([bare])[0]!);
      } catch {
        // A host name that is not a valid DNS SAN (e.g. with '_') cannot be put in the certificate.
      }
    }
  };
  const host = listenHost.replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0' || host === '::' || host === '') {
    for (const n of ['127.0.0.1', '::1', 'localhost', hostname()]) add(n);
  } else {
    add(host);
  }
  for (const n of extra) add(n);
  return { dns: [...dns], ips: [...ips] };
}

/** A CertificateProvider fed by the server itself (not by files). */
export class ServingCredentialsProvider implements CertificateProvider {
  private ca: { caCertificate: Buffer } | undefined;
  private identity: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  setIdentity(chainPem: string, keyPem: string): void {
    this.identity = { certificate: Buffer.from(chainPem), privateKey: Buffer.from(keyPem) };
    for (const l of this.identityListeners) l(this.identity);
  }

  setTrustBundle(bundlePem: string): void {
    this.ca = { caCertificate: Buffer.from(bundlePem) };
    for (const l of this.caListeners) l(this.ca);
  }

  // grpc-js registers its listeners before its own watcher: answer on the next tick, as its file provider does.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    if (this.ca) process.nextTick(listener, this.ca);
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    if (this.identity) process.nextTick(listener, this.identity);
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

export const RETRY_SERVING_RENEWAL_MS = 10_000;

/** Issues the server's certificate and keeps renewing it into the provider. */
export class ServingIdentity {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  serialHex = '';
  notAfter = new Date(0);

  constructor(
    private readonly authority: Authority,
    private readonly provider: ServingCredentialsProvider,
    private readonly names: { dns: string[]; ips: string[] },
    private readonly ttlMs: number | undefined,
    private readonly logger: Logger,
  ) {}

  get spiffeId(): string {
    return caServerSpiffeId(this.authority.trustDomain);
  }

  /** Issues the first certificate; throws (the server does not start) when the CA cannot issue it. */
  async start(): Promise<void> {
    await this.renew();
  }

  private async renew(): Promise<void> {
    const now = new Date();
    const issued = await this.authority.issue({ spiffeId: this.spiffeId, dns: this.names.dns, ips: this.names.ips, ttlMs: this.ttlMs }, now);
    this.provider.setIdentity(issued.chainPem, issued.privateKeyPem);
    this.serialHex = issued.serialHex;
    this.notAfter = issued.notAfter;
    this.logger.info({ event: 'serving_certificate', spiffeId: this.spiffeId, serial: issued.serialHex, notAfter: issued.notAfter.toISOString(), dns: this.names.dns, ips: this.names.ips }, 'serving certificate issued');
    // Useful life starts now (notBefore is backdated for clock skew): renew at 2/3 of what is left.
    this.schedule((issued.notAfter.getTime() - now.getTime()) * (2 / 3));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        const left = this.notAfter.getTime() - Date.now();
        this.logger.error({ event: 'serving_certificate', reason: (err as Error).message, validForMs: left }, 'cannot renew the serving certificate; retrying');
        this.schedule(Math.min(RETRY_SERVING_RENEWAL_MS, Math.max(1000, left / 4)));
      });
    }, Math.max(1000, Math.min(delayMs, 2 ** 31 - 1)));
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
