// `meshward ca serve`: the CA's gRPC API (proto/meshward/ca/v1/ca.proto) over TLS with @grpc/grpc-js.
// A thin shell: SignService decides, the Authority issues, this file moves messages, maps errors to gRPC
// status codes and writes one audit line per Sign decision. It shares the store with the CLI and with other
// replicas (a revocation or a token made elsewhere takes effect at the next request), follows bundle.crt
// so a `ca rotate --root` reaches every WatchTrustBundle stream, and serves the store's current CRL
// (crl-publisher.ts: renewed before half its validity, pushed on every WatchTrustBundle stream).
import * as grpc from '@grpc/grpc-js';
import { TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import { MeshwardError, isMeshwardError, type ErrorCode } from '../../errors.js';
import { Authority } from '../authority.js';
import { KubernetesTokenVerifier, loadKubernetesAuthConfig, type KubernetesAuthConfig } from '../jwt.js';
import { decodePem } from '../../pki/pem.js';
import { CrlPublisher, DEFAULT_CRL_CHECK_MS, crlMessage } from './crl-publisher.js';
import { certificateAuthorityApi, type CrlMessage, type SignRequest, type SignResponse, type TrustBundleMessage } from './proto.js';
import { DEFAULT_SIGN_RATE_LIMIT, RateLimiter, type RateLimit } from './rate-limit.js';
import { ServingCredentialsProvider, ServingIdentity, servingNames } from './serving-identity.js';
import { RateLimitedError, SignService, type SignContext } from './sign.js';
import { Admission, AdmissionRefusedError, DEFAULT_SIGN_CONCURRENCY, DEFAULT_SIGN_QUEUE } from './admission.js';
import { DEFAULT_BUNDLE_POLL_MS, TrustBundleWatch } from './trust-bundle.js';
import type { CaMetrics } from './metrics.js';
import { StoreError } from '../store/store.js';

export interface CaServerOptions {
  /** The CA directory (made by `meshward ca init`). */
  dir: string;
  /** --store: the CA's state (a postgres:// URL); default MESHWARD_STORE, `store:` in config.yaml, D/ca.db. */
  store?: string;
  /** HOST:PORT; port 0 picks a free port (see CaServer.port). */
  listen: string;
  /** Extra DNS names / IPs for the serving certificate (e.g. the Kubernetes Service name). */
  sans?: string[];
  /** Lifetime of the serving certificate; the CA's default TTL when absent. */
  servingTtlMs?: number;
  signRateLimit?: RateLimit;
  /** Sign calls in progress at once; later ones wait in arrival order (default DEFAULT_SIGN_CONCURRENCY). */
  signConcurrency?: number;
  /** Sign calls that may wait; beyond it RESOURCE_EXHAUSTED at once (default DEFAULT_SIGN_QUEUE). */
  signQueue?: number;
  /** Kubernetes token checking; by default read from D/kubernetes.yaml (absent: JWTs are refused). */
  kubernetes?: KubernetesAuthConfig;
  bundlePollMs?: number;
  /** How often the store is checked for a new or due CRL when no notification arrives (default 5 s). */
  crlCheckMs?: number;
  /** Audit and operational log; JSON on stdout by default. */
  logger?: Logger;
  /** Counts every Sign decision (`ca serve --admin` serves them on /metrics). */
  metrics?: CaMetrics;
}

const GRPC_CODES: Record<ErrorCode, grpc.status> = {
  usage: grpc.status.INVALID_ARGUMENT,
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  already_exists: grpc.status.ALREADY_EXISTS,
  permission_denied: grpc.status.PERMISSION_DENIED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

/** The gRPC status for an error; anything that is not a MeshwardError is INTERNAL without details. */
export function grpcStatusOf(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof RateLimitedError || err instanceof AdmissionRefusedError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof CancelledWhileQueuedError) return { code: grpc.status.CANCELLED, details: err.message };
  if (isMeshwardError(err)) return { code: GRPC_CODES[err.code], details: err.message };
  return { code: grpc.status.INTERNAL, details: 'internal error in the CA (see its log)' };
}

/** The caller went away (cancelled, or its deadline passed) while its Sign waited for its turn: nothing was done. */
export class CancelledWhileQueuedError extends Error {
  constructor() {
    super('the call was cancelled (or its deadline passed) while it waited for its turn: nothing was issued');
    this.name = 'CancelledWhileQueuedError';
  }
}

/** Splits HOST:PORT (IPv6 in brackets); `flag` names the option in the error. */
export function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new MeshwardError('usage', `${flag} "${listen}" is not HOST:PORT: use e.g. 0.0.0.0:8443, 127.0.0.1:8443 or [::]:8443`);
  return { host: m[1]!, port };
}

/**
 * The DER of the client certificate TLS verified against the bundle, or undefined. Read from the TLS socket
 * under the call (grpc-js keeps it at call.call[.nextCall…].stream.session.socket, not a public API) with
 * getPeerX509Certificate(): getAuthContext() runs getPeerCertificate(), which turns the whole certificate
 * into a JavaScript object on every call, only for its .raw to be used. When that path is not there (another
 * grpc-js), getAuthContext() gives the same bytes.
 */
export function peerCertificateDerOf(call: grpc.ServerUnaryCall<unknown, unknown>): Buffer | undefined {
  const socket = tlsSocketOf(call);
  if (socket) return socket.authorized ? socket.getPeerX509Certificate()?.raw : undefined;
  return call.getAuthContext().sslPeerCertificate?.raw;
}

/** The TLS socket under a grpc-js server call, or undefined when grpc-js does not keep it where expected. */
export function tlsSocketOf(call: grpc.ServerUnaryCall<unknown, unknown>): TLSSocket | undefined {
  type Link = { nextCall?: Link; stream?: { session?: { socket?: unknown } } };
  let link = (call as unknown as { call?: Link }).call;
  for (let depth = 0; link && !link.stream && depth < 8; depth++) link = link.nextCall;
  const socket = link?.stream?.session?.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

export class CaServer {
  private readonly watches = new Set<grpc.ServerWritableStream<unknown, TrustBundleMessage>>();
  private closing = false;
  private decodedBundle: { pem: string; der: Buffer[] } | undefined;

  private constructor(
    readonly authority: Authority,
    private readonly server: grpc.Server,
    readonly port: number,
    readonly host: string,
    readonly servingIdentity: ServingIdentity,
    readonly bundle: TrustBundleWatch,
    readonly crls: CrlPublisher,
    private readonly logger: Logger,
    private readonly metrics: CaMetrics | undefined,
    private readonly admission: Admission,
  ) {}

  /** The bundle as WatchTrustBundle sends it: the roots and the current CRLs. */
  private bundleMessage(): TrustBundleMessage {
    const crl = this.crls.crl;
    if (!crl) return this.bundle.current;
    const m = crlMessage(crl);
    return { ...this.bundle.current, crls: m.crls, crlPem: m.pem, crlNumber: m.crlNumber };
  }

  get address(): string {
    return `${this.host.includes(':') && !this.host.startsWith('[') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  static async start(opts: CaServerOptions): Promise<CaServer> {
    const logger = opts.logger ?? pino({ base: { component: 'ca-server' } });
    const { host } = parseListen(opts.listen);
    // Built before anything opens: a bad bound throws with nothing to close.
    const admission = new Admission(opts.signConcurrency ?? DEFAULT_SIGN_CONCURRENCY, opts.signQueue ?? DEFAULT_SIGN_QUEUE);
    const authority = await Authority.open(opts.dir, {
      store: opts.store,
      // A replica's D may be a read-only Secret mount: the server writes nothing there (docs/ca-operations.md).
      readOnlyDir: true,
      warn: (message) => logger.warn({ event: 'key_file_permissions' }, message),
      storeWarn: (message) => {
        opts.metrics?.storeError('background');
        logger.warn({ event: 'store' }, message);
      },
    });
    opts.metrics?.follow(authority.store);
    const closers: (() => void | Promise<void>)[] = [() => authority.close()];
    try {
      const kubernetesConfig = opts.kubernetes ?? loadKubernetesAuthConfig(opts.dir);
      const kubernetes = kubernetesConfig ? new KubernetesTokenVerifier(kubernetesConfig, authority.trustDomain) : undefined;
      const signer = new SignService(authority, new RateLimiter(opts.signRateLimit ?? DEFAULT_SIGN_RATE_LIMIT), kubernetes);

      const bundle = new TrustBundleWatch(authority.layout.bundle, logger, opts.bundlePollMs ?? DEFAULT_BUNDLE_POLL_MS);
      closers.push(() => bundle.close());
      const crls = await CrlPublisher.start(authority, logger, opts.crlCheckMs ?? DEFAULT_CRL_CHECK_MS);
      closers.push(() => crls.close());
      const provider = new ServingCredentialsProvider();
      provider.setTrustBundle(bundle.current.pem);
      bundle.subscribe((b) => provider.setTrustBundle(b.pem));
      const serving = new ServingIdentity(authority, provider, servingNames(host, opts.sans), opts.servingTtlMs, logger);
      closers.push(() => serving.stop());
      await serving.start();

      // Channelz (grpc-js's introspection service) stays on though nothing serves it and its bookkeeping
      // shows in a Sign's profile: in grpc-js 1.14.7 `grpc.enable_channelz: 0` also leaves the server's
      // session map empty, and forceShutdown() destroys only the sessions in that map, so a closed server kept
      // its open client connections and the process never exited (test/agent hung after its last test).
      const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 });
      // Client certificates are requested, verified against the bundle, and optional (tokens need none).
      const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
      let instance: CaServer | undefined;
      server.addService(certificateAuthorityApi().service, {
        Sign: (call: grpc.ServerUnaryCall<SignRequest, SignResponse>, callback: grpc.sendUnaryData<SignResponse>) => {
          void instance!.handleSign(call, callback, signer);
        },
        GetTrustBundle: (_call: grpc.ServerUnaryCall<unknown, TrustBundleMessage>, callback: grpc.sendUnaryData<TrustBundleMessage>) => {
          callback(null, bundle.current);
        },
        WatchTrustBundle: (call: grpc.ServerWritableStream<unknown, TrustBundleMessage>) => instance!.handleWatch(call),
        GetCrl: (_call: grpc.ServerUnaryCall<unknown, CrlMessage>, callback: grpc.sendUnaryData<CrlMessage>) => {
          const crl = crls.crl;
          if (crl) callback(null, crlMessage(crl));
          else callback({ code: grpc.status.UNAVAILABLE, details: 'no CRL yet: the CA cannot reach its store; retry with backoff' });
        },
      });
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(opts.listen, credentials, (err, boundPort) => {
          if (err) reject(new MeshwardError('unavailable', `cannot listen on ${opts.listen}: ${err.message}`));
          else resolve(boundPort);
        });
      });
      instance = new CaServer(authority, server, port, host, serving, bundle, crls, logger, opts.metrics, admission);
      logger.info({ event: 'listening', address: instance.address, port, trustDomain: authority.trustDomain, servingSpiffeId: serving.spiffeId, store: authority.storeDescription }, 'CA server listening');
      return instance;
    } catch (err) {
      for (const close of closers.reverse()) await close();
      throw err;
    }
  }

  private async handleSign(call: grpc.ServerUnaryCall<SignRequest, SignResponse>, callback: grpc.sendUnaryData<SignResponse>, signer: SignService): Promise<void> {
    const ctx: SignContext = { method: 'none' };
    const peer = call.getPeer();
    const started = process.hrtime.bigint();
    const observe = (code: grpc.status) => this.metrics?.observeSign(ctx.method, code, Number(process.hrtime.bigint() - started) / 1e9, ctx.identity !== undefined);
    const req = call.request;
    try {
      const issued = await this.admitted(call, () => {
        const peerCertificateDer = peerCertificateDerOf(call);
        // The decision's clock starts with the call's turn: a token or certificate that expires while the call
        // waits in the queue is judged at the moment the work is done.
        return signer.sign({ csr: req.csr, token: req.token, ttlSeconds: req.ttlSeconds, peerCertificateDer }, ctx, new Date());
      });
      this.logger.info({ event: 'sign', peer, method: ctx.method, identity: ctx.identity, serial: issued.serialHex, notAfter: issued.notAfter.toISOString(), result: 'issued' }, 'certificate issued');
      callback(null, {
        certChain: issued.chainDer,
        trustBundle: this.bundleDer(issued.bundlePem),
        notAfter: Math.floor(issued.notAfter.getTime() / 1000),
        spiffeId: issued.spiffeId,
        serial: issued.serialHex,
      });
      observe(grpc.status.OK);
    } catch (err) {
      const status = grpcStatusOf(err);
      observe(status.code);
      if (err instanceof StoreError) this.metrics?.storeError('sign');
      const level = status.code === grpc.status.INTERNAL ? 'error' : 'warn';
      this.logger[level]({
        event: 'sign', peer, method: ctx.method, identity: ctx.identity, result: 'refused', code: grpc.status[status.code],
        reason: isMeshwardError(err) ? err.message : (err as Error).message,
      }, 'certificate refused');
      callback({ code: status.code, details: status.details });
    }
  }

  /**
   * Runs `work` in the call's turn (admission.ts): at most `signConcurrency` at once, the rest in arrival
   * order. A call cancelled while it waited leaves the queue at once and is dropped without any work (its
   * certificate would reach nobody).
   */
  private async admitted<T>(call: grpc.ServerUnaryCall<unknown, unknown>, work: () => Promise<T>): Promise<T> {
    const gaveUp = new AbortController();
    const onCancelled = () => gaveUp.abort(new CancelledWhileQueuedError());
    call.once('cancelled', onCancelled);
    let release: () => void;
    try {
      release = await this.admission.enter(gaveUp.signal);
    } finally {
      call.off('cancelled', onCancelled);
    }
    try {
      if (call.cancelled) throw new CancelledWhileQueuedError();
      return await work();
    } finally {
      release();
    }
  }

  /** The bundle's certificates as DER, decoded once per bundle rather than once per Sign. */
  private bundleDer(pem: string): Buffer[] {
    if (this.decodedBundle?.pem !== pem) {
      this.decodedBundle = { pem, der: decodePem(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der) };
    }
    return this.decodedBundle.der;
  }

  private handleWatch(call: grpc.ServerWritableStream<unknown, TrustBundleMessage>): void {
    if (this.closing) {
      call.end();
      return;
    }
    this.watches.add(call);
    call.write(this.bundleMessage());
    const send = () => call.write(this.bundleMessage());
    const unsubscribeBundle = this.bundle.subscribe(send);
    const unsubscribeCrl = this.crls.subscribe(send);
    const done = () => {
      unsubscribeBundle();
      unsubscribeCrl();
      this.watches.delete(call);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  }

  /** Stops taking calls, ends watch streams, waits up to `graceMs` for calls in flight, then closes. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const call of this.watches) call.end();
    this.watches.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.servingIdentity.stop();
    this.bundle.close();
    await this.crls.close();
    await this.authority.close();
  }

  /** Like close() without waiting: drops every connection at once (tests simulate a crash with it). */
  kill(): void {
    this.closing = true;
    this.server.forceShutdown();
    this.servingIdentity.stop();
    this.bundle.close();
    void this.crls.close();
    void this.authority.close();
  }
}
