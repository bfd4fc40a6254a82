// The renewal agent: keeps a workload's certificate in a folder fresh. The key is generated here and never
// leaves; the CA sees only a CSR. The first certificate is bootstrapped with a one-time token or a
// Kubernetes service-account JWT; afterwards the agent renews with its current certificate over mTLS at
// 2/3 of the lifetime (with jitter), backs off 1 s → 1 min while that certificate is still valid, and
// follows WatchTrustBundle into ca.crt and crl.pem (the CA pushes every new CRL on that stream; a new
// stream, after any reconnection, starts with the current one). With several CA addresses (replicas) it
// moves to the next one when a call or the stream fails. It stops with a clear error only when it can no
// longer authenticate (expired certificate and no usable token, revoked certificate, refused token).
// Runs as `meshward agent` or in-process inside the sidecar (start(), stop(), events).
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MeshwardError, isMeshwardError } from '../errors.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { parseCrl } from '../pki/crl.js';
import { createCsr } from '../pki/csr.js';
import { checkDnsNames } from '../ca/rules.js';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, publicKeyMatches, type KeyType } from '../pki/keys.js';
import { decodePem, encodePem } from '../pki/pem.js';
import { parseWorkloadSpiffeId } from '../pki/spiffe.js';
import { caServerSpiffeId, type TrustBundleMessage } from '../ca/server/proto.js';
import { CaClient } from './client.js';
import { backoffDelay, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, renewalTime } from './schedule.js';
import { readSecretFiles, writeSecretFiles } from './secret-dir.js';

export interface AgentOptions {
  /** host:port of `meshward ca serve`, or several comma-separated (replicas): the agent fails over between them. */
  ca: string;
  /** PEM file with the roots that may sign the CA's serving certificate (re-read at every connection). */
  bundleFile: string;
  /** Workload folder O: tls.crt, tls.key, ca.crt in the Kubernetes Secret layout. */
  outDir: string;
  /** Bootstrap token or Kubernetes JWT, given directly... */
  token?: string;
  /** ...or read from this file at every attempt (a projected service-account token is refreshed in place). */
  tokenFile?: string;
  /** The identity to request; needed to bootstrap, taken from the current certificate otherwise. */
  spiffeId?: string;
  /** DNS names to request beside the SPIFFE ID (a server that clients reach by host name, e.g. the
   * admission webhook); taken from the current certificate when absent, so renewals keep them. */
  dns?: string[];
  keyType?: KeyType;
  /** Requested certificate lifetime; the CA's default when absent. */
  ttlMs?: number;
  /** Obtain (or confirm) one certificate, then stop: for init containers. */
  once?: boolean;
  /** Follow WatchTrustBundle into ca.crt and crl.pem (default true; ignored with once). */
  watchBundle?: boolean;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Deadline of one Sign call (default 10 s). */
  rpcTimeoutMs?: number;
  logger?: Logger;
}

export type CredentialKind = 'mtls' | 'token' | 'jwt';

export interface RenewedEvent { spiffeId: string; serialHex: string; notAfter: Date; method: CredentialKind }
export interface RetryEvent { error: Error; attempt: number; delayMs: number; certificateValidUntil?: Date }
export interface BundleEvent { sha256: string }
export interface CrlEvent { crlNumber: bigint }

interface Held { chainPem: string; keyPem: string; leaf: ParsedCertificate; spiffeId: string; renewFrom: Date }

/** gRPC codes that mean "these credentials will never work": retrying cannot help. */
const FATAL_CODES = new Set([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION]);

export const BOOTSTRAP_AGAIN = 'certificate expired; bootstrap again with a new token (meshward token create) and restart the agent with --token';

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function grpcDetails(err: unknown): string {
  return (err as { details?: string }).details || (err as Error).message || String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s,]+):\d{1,5}$/;

/** The addresses of `--ca a:port,b:port` (one or more), each checked. */
export function parseCaAddresses(text: string): string[] {
  const addresses = text.split(',').map((a) => a.trim());
  const bad = addresses.find((a) => !ADDRESS.test(a));
  if (bad !== undefined) {
    throw new MeshwardError('usage', `--ca "${text}": "${bad}" is not HOST:PORT: give the address of meshward ca serve, e.g. meshward-ca.meshward.svc:8443, or several separated by commas`);
  }
  return addresses;
}

/** The highest CRL number in a crl.pem, after checking that every block is a CRL that parses. */
export function crlPemNumber(pem: string): bigint {
  const blocks = decodePem(pem);
  if (blocks.length === 0) throw new Error('it holds no CRL');
  let highest = -1n;
  for (const b of blocks) {
    if (b.label !== 'X509 CRL') throw new Error(`it holds a ${b.label} block, not only X509 CRL`);
    const n = parseCrl(b.der).crlNumber ?? 0n;
    if (n > highest) highest = n;
  }
  return highest;
}

export class Agent extends EventEmitter {
  private held: Held | undefined;
  private bundlePem: string | undefined;
  private crlPem: string | undefined;
  private crlNumber = -1n;
  private readonly addresses: string[];
  /** The address calls go to now; moves to the next after a failure. */
  private caIndex = 0;
  private readonly abort = new AbortController();
  private spentTokenHash: string | undefined;
  private mtlsRefusal: string | undefined;
  private watchStream: grpc.ClientReadableStream<TrustBundleMessage> | undefined;
  private running: Promise<void>[] = [];
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  /** Resolves when stop() completes; rejects with the fatal error when the agent gives up. */
  readonly closed: Promise<void>;

  constructor(readonly options: AgentOptions) {
    super();
    if (options.spiffeId !== undefined) parseWorkloadSpiffeId(options.spiffeId);
    // The CA applies the same check; refusing here says which flag is wrong before any request.
    if (options.dns !== undefined) checkDnsNames(options.dns);
    this.addresses = parseCaAddresses(options.ca);
    this.closed = new Promise<void>((resolve, reject) => { this.settle = { resolve, reject }; });
    this.closed.catch(() => undefined); // observed through the promise or the 'error' event, never unhandled
  }

  /** The certificate the agent holds now. */
  get certificate(): { spiffeId: string; serialHex: string; notAfter: Date } | undefined {
    return this.held && { spiffeId: this.held.spiffeId, serialHex: this.held.leaf.serialHex, notAfter: this.held.leaf.notAfter };
  }

  /**
   * Resolves once O holds a valid certificate (the one already there, or a new one); rejects when none
   * can be obtained. Without `once`, renewal and bundle watching then continue in the background.
   */
  async start(): Promise<void> {
    this.held = this.loadHeld(new Date());
    const now = new Date();
    if (!this.held || now.getTime() >= renewalTime(this.held.renewFrom, this.held.leaf.notAfter, 0).getTime()) {
      try {
        await this.obtain();
      } catch (err) {
        this.fail(err as Error);
        throw err;
      }
    } else {
      this.log('info', { spiffeId: this.held.spiffeId, serial: this.held.leaf.serialHex, notAfter: this.held.leaf.notAfter.toISOString() }, 'using the valid certificate already in the output folder');
    }
    if (this.options.once) await this.fetchCrlOnce();
    if (this.options.once || this.abort.signal.aborted) return;
    this.running.push(this.renewLoop());
    if (this.options.watchBundle !== false) this.running.push(this.watchLoop());
  }

  /** Stops renewing and watching; the certificate on disk stays. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.watchStream?.cancel();
    await Promise.allSettled(this.running);
    this.settle.resolve();
  }

  // ---------- the certificate on disk ----------

  private loadHeld(now: Date): Held | undefined {
    const files = readSecretFiles(this.options.outDir, ['tls.crt', 'tls.key']);
    const bundle = readSecretFiles(this.options.outDir, ['ca.crt']);
    if (bundle) this.bundlePem = bundle.get('ca.crt')!.toString();
    const crl = readSecretFiles(this.options.outDir, ['crl.pem']);
    if (crl) {
      try {
        const pem = crl.get('crl.pem')!.toString();
        this.crlNumber = crlPemNumber(pem);
        this.crlPem = pem;
      } catch (err) {
        this.log('warn', { reason: (err as Error).message }, 'ignoring the unusable crl.pem in the output folder');
      }
    }
    if (!files) return undefined;
    try {
      const chainPem = files.get('tls.crt')!.toString();
      const keyPem = files.get('tls.key')!.toString();
      const blocks = decodePem(chainPem).filter((b) => b.label === 'CERTIFICATE');
      if (blocks.length === 0) throw new Error('tls.crt holds no certificate');
      const leaf = parseCertificate(blocks[0]!.der);
      if (!publicKeyMatches(importPrivateKeyPem(keyPem), leaf.publicKey)) throw new Error('tls.key does not match tls.crt');
      const spiffeId = leaf.uris[0];
      if (!spiffeId) throw new Error('tls.crt has no SPIFFE ID');
      if (this.options.spiffeId && this.options.spiffeId !== spiffeId) {
        throw new MeshwardError('invalid_argument', `${this.options.outDir} holds a certificate for ${spiffeId}, not ${this.options.spiffeId}: fix --spiffe-id or empty the folder`);
      }
      if (now.getTime() >= leaf.notAfter.getTime()) {
        this.log('warn', { spiffeId, notAfter: leaf.notAfter.toISOString() }, 'the certificate in the output folder has expired');
      }
      return { chainPem, keyPem, leaf, spiffeId, renewFrom: leaf.notBefore };
    } catch (err) {
      if (isMeshwardError(err) && err.message.includes('fix --spiffe-id')) throw err;
      this.log('warn', { reason: (err as Error).message }, 'ignoring the unusable certificate in the output folder');
      return undefined;
    }
  }

  /** One generation with every file: a reader never sees a new certificate beside an old CRL's absence. */
  private write(held: Held, bundlePem: string, crlPem: string | undefined): void {
    writeSecretFiles(this.options.outDir, [
      { name: 'tls.crt', data: held.chainPem, mode: 0o644 },
      { name: 'tls.key', data: held.keyPem, mode: 0o600 },
      { name: 'ca.crt', data: bundlePem, mode: 0o644 },
      ...(crlPem !== undefined ? [{ name: 'crl.pem', data: crlPem, mode: 0o644 }] : []),
    ], new Date());
  }

  /** The CA address calls go to now. */
  get caAddress(): string {
    return this.addresses[this.caIndex]!;
  }

  /** After a failed call: the next address (with one address, the same). */
  private failover(reason: string): void {
    if (this.addresses.length === 1) return;
    const from = this.caAddress;
    this.caIndex = (this.caIndex + 1) % this.addresses.length;
    this.log('warn', { from, to: this.caAddress, reason }, 'CA unreachable; trying the next address');
  }

  /** The roots to trust for the CA's own certificate: --bundle plus the latest bundle the CA sent. */
  private trustedRoots(): Buffer {
    let pem = '';
    try {
      pem = readFileSync(this.options.bundleFile, 'utf8');
    } catch (err) {
      if (!this.bundlePem) throw new MeshwardError('not_found', `cannot read the trust bundle ${this.options.bundleFile}: ${(err as Error).message}`);
    }
    return Buffer.from(`${pem.trimEnd()}\n${this.bundlePem ?? ''}`);
  }

  private caSpiffeId(): string | undefined {
    const id = this.held?.spiffeId ?? this.options.spiffeId;
    return id ? caServerSpiffeId(parseWorkloadSpiffeId(id).trustDomain) : undefined;
  }

  // ---------- obtaining a certificate ----------

  private currentToken(): string | undefined {
    let token = this.options.token;
    if (token === undefined && this.options.tokenFile !== undefined) {
      try {
        token = readFileSync(this.options.tokenFile, 'utf8').trim();
      } catch (err) {
        this.log('warn', { file: this.options.tokenFile, reason: (err as Error).message }, 'cannot read the token file');
        return undefined;
      }
    }
    if (!token) return undefined;
    return sha256(token) === this.spentTokenHash ? undefined : token;
  }

  /** Which credential the next attempt uses, or the fatal error when none is left. */
  private chooseCredential(now: Date): { kind: CredentialKind; token: string } {
    if (this.held && now.getTime() < this.held.leaf.notAfter.getTime() && this.mtlsRefusal === undefined) return { kind: 'mtls', token: '' };
    const token = this.currentToken();
    if (token) return { kind: token.includes('.') ? 'jwt' : 'token', token };
    if (this.mtlsRefusal !== undefined) {
      return this.fatal(`the CA refused to renew certificate ${this.held!.leaf.serialHex}: ${this.mtlsRefusal}; bootstrap again with a new token (meshward token create)`);
    }
    if (this.held) return this.fatal(BOOTSTRAP_AGAIN);
    if (this.spentTokenHash) return this.fatal('the bootstrap token was already used and no certificate is held: create a new one with meshward token create');
    return this.fatal(`${this.options.outDir} holds no certificate and no token was given: pass --token or --token-file (create one with meshward token create)`);
  }

  private fatal(message: string): never {
    throw new MeshwardError('unauthenticated', message);
  }

  /** Gets a new certificate, retrying transient failures with backoff; throws only fatal errors. */
  private async obtain(): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.abort.signal.aborted) return;
      const credential = this.chooseCredential(new Date());
      try {
        await this.signWith(credential);
        return;
      } catch (err) {
        const code = grpcCode(err);
        if (code !== undefined && FATAL_CODES.has(code)) {
          if (credential.kind === 'mtls') {
            // A revoked (or otherwise refused) certificate: a token, if there is one, is the way back.
            this.mtlsRefusal = grpcDetails(err);
            this.log('warn', { reason: this.mtlsRefusal }, 'the CA refused renewal with the current certificate');
            continue;
          }
          if (credential.kind === 'token') this.spentTokenHash = sha256(credential.token);
          throw new MeshwardError('unauthenticated', `the CA refused the ${credential.kind === 'jwt' ? 'service-account token' : 'bootstrap token'}: ${grpcDetails(err)}`);
        }
        if (isMeshwardError(err) && code === undefined) throw err;
        attempt += 1;
        this.failover(grpcDetails(err));
        // Every address gets one try before the agent waits: backoff counts rounds, not calls.
        if (attempt % this.addresses.length !== 0) continue;
        let delayMs = backoffDelay(attempt / this.addresses.length, Math.random(), {
          initialMs: this.options.backoff?.initialMs ?? BACKOFF_INITIAL_MS,
          maxMs: this.options.backoff?.maxMs ?? BACKOFF_MAX_MS,
        });
        const validUntil = this.held?.leaf.notAfter;
        // Never sleep through the end of the current certificate: one more try just before it expires.
        if (validUntil && validUntil.getTime() > Date.now()) delayMs = Math.min(delayMs, Math.max(100, validUntil.getTime() - Date.now() - 1000));
        const error = err instanceof Error ? err : new Error(String(err));
        this.log('warn', { attempt, delayMs, reason: grpcDetails(err), validUntil: validUntil?.toISOString() }, 'certificate request failed; retrying');
        this.emit('retry', { error, attempt, delayMs, certificateValidUntil: validUntil } satisfies RetryEvent);
        await sleep(delayMs, this.abort.signal);
      }
    }
  }

  private async signWith(credential: { kind: CredentialKind; token: string }): Promise<void> {
    const spiffeId = this.held?.spiffeId ?? this.options.spiffeId;
    if (!spiffeId) this.fatal('no SPIFFE ID to request: pass --spiffe-id for the first certificate');
    const keys = generateKeyPair(this.options.keyType ?? 'ec-p256');
    const dns = this.options.dns ?? this.held?.leaf.dns ?? [];
    const csr = createCsr({ subject: {}, uris: [spiffeId], ...(dns.length ? { dns } : {}) }, keys);
    const client = new CaClient({
      address: this.caAddress,
      rootsPem: this.trustedRoots(),
      caSpiffeId: this.caSpiffeId(),
      ...(credential.kind === 'mtls' ? { clientKeyPem: Buffer.from(this.held!.keyPem), clientChainPem: Buffer.from(this.held!.chainPem) } : {}),
    });
    let response;
    try {
      response = await client.sign({
        csr,
        token: credential.token,
        ttlSeconds: this.options.ttlMs ? Math.ceil(this.options.ttlMs / 1000) : 0,
      }, this.options.rpcTimeoutMs ?? 10_000);
    } finally {
      client.close();
    }
    const receivedAt = new Date();
    if (response.certChain.length === 0) throw new MeshwardError('internal', 'the CA answered without a certificate');
    const leaf = parseCertificate(response.certChain[0]!);
    if (!publicKeyMatches(keys.privateKey, leaf.publicKey) || leaf.uris[0] !== spiffeId) {
      throw new MeshwardError('internal', `the CA returned a certificate for another key or identity (${leaf.uris.join(', ')})`);
    }
    const held: Held = {
      chainPem: response.certChain.map((der) => encodePem('CERTIFICATE', der)).join(''),
      keyPem: exportPrivateKeyPem(keys.privateKey),
      leaf,
      spiffeId,
      // Certificates are backdated for clock skew; their useful life starts now.
      renewFrom: new Date(Math.max(leaf.notBefore.getTime(), Math.min(receivedAt.getTime(), leaf.notAfter.getTime()))),
    };
    const bundlePem = response.trustBundle.length > 0 ? response.trustBundle.map((der) => encodePem('CERTIFICATE', der)).join('') : (this.bundlePem ?? '');
    this.write(held, bundlePem, this.crlPem);
    this.held = held;
    this.bundlePem = bundlePem;
    this.mtlsRefusal = undefined;
    if (credential.kind === 'token') this.spentTokenHash = sha256(credential.token);
    this.log('info', { spiffeId, serial: leaf.serialHex, notAfter: leaf.notAfter.toISOString(), method: credential.kind }, 'certificate written');
    this.emit('renewed', { spiffeId, serialHex: leaf.serialHex, notAfter: leaf.notAfter, method: credential.kind } satisfies RenewedEvent);
  }

  // ---------- background loops ----------

  private async renewLoop(): Promise<void> {
    try {
      while (!this.abort.signal.aborted && this.held) {
        const at = renewalTime(this.held.renewFrom, this.held.leaf.notAfter, Math.random());
        await sleep(at.getTime() - Date.now(), this.abort.signal);
        if (this.abort.signal.aborted) return;
        await this.obtain();
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private async watchLoop(): Promise<void> {
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      let client: CaClient | undefined;
      try {
        client = new CaClient({ address: this.caAddress, rootsPem: this.trustedRoots(), caSpiffeId: this.caSpiffeId() });
        const stream = client.watchTrustBundle();
        this.watchStream = stream;
        let received = false;
        await new Promise<void>((resolve) => {
          stream.on('data', (msg: TrustBundleMessage) => {
            attempt = 0;
            received = true;
            this.onBundle(msg);
          });
          stream.on('error', (err: Error) => {
            if (!this.abort.signal.aborted) {
              this.log('debug', { reason: grpcDetails(err) }, 'trust bundle watch ended; reconnecting');
              // A stream that never delivered means this address is down: the next one may not be.
              if (!received) this.failover(grpcDetails(err));
            }
            resolve();
          });
          stream.on('end', resolve);
        });
      } catch (err) {
        this.log('warn', { reason: (err as Error).message }, 'cannot watch the trust bundle');
      } finally {
        client?.close();
        this.watchStream = undefined;
      }
      attempt += 1;
      await sleep(backoffDelay(Math.ceil(attempt / this.addresses.length), Math.random(), { initialMs: this.options.backoff?.initialMs, maxMs: this.options.backoff?.maxMs }), this.abort.signal);
    }
  }

  /** --once: one GetCrl so an init container leaves crl.pem beside the certificate; a CA without it is no error. */
  private async fetchCrlOnce(): Promise<void> {
    for (let i = 0; i < this.addresses.length && !this.abort.signal.aborted; i++) {
      const client = new CaClient({ address: this.caAddress, rootsPem: this.trustedRoots(), caSpiffeId: this.caSpiffeId() });
      try {
        const crl = await client.getCrl(this.options.rpcTimeoutMs ?? 10_000);
        this.onBundle({ roots: [], pem: '', sha256: '', crlPem: crl.pem, crls: crl.crls });
        return;
      } catch (err) {
        if (grpcCode(err) === grpc.status.UNIMPLEMENTED) return;
        this.log('warn', { reason: grpcDetails(err) }, 'cannot fetch the CRL');
        this.failover(grpcDetails(err));
      } finally {
        client.close();
      }
    }
  }

  /** A bundle (and CRL) from the CA: ca.crt and crl.pem rewritten together when either changed. */
  private onBundle(msg: TrustBundleMessage): void {
    if (!this.held) return;
    let bundlePem = msg.pem || msg.roots.map((der) => encodePem('CERTIFICATE', der)).join('');
    try {
      if (bundlePem) decodePem(bundlePem);
    } catch (err) {
      this.log('warn', { reason: (err as Error).message }, 'ignoring an unusable trust bundle from the CA');
      bundlePem = '';
    }
    const bundleChanged = bundlePem !== '' && bundlePem !== this.bundlePem;
    let crlPem = msg.crlPem || (msg.crls ?? []).map((der) => encodePem('X509 CRL', der)).join('');
    let crlNumber = this.crlNumber;
    if (crlPem && crlPem !== this.crlPem) {
      try {
        crlNumber = crlPemNumber(crlPem);
        // A replica that has not yet seen the newest CRL must not take it back.
        if (crlNumber <= this.crlNumber) crlPem = '';
      } catch (err) {
        this.log('warn', { reason: (err as Error).message }, 'ignoring an unusable CRL from the CA');
        crlPem = '';
      }
    } else crlPem = '';
    if (!bundleChanged && !crlPem) return;
    const nextBundle = bundleChanged ? bundlePem : this.bundlePem ?? bundlePem;
    const nextCrl = crlPem || this.crlPem;
    try {
      this.write(this.held, nextBundle, nextCrl);
    } catch (err) {
      this.log('error', { reason: (err as Error).message }, `cannot write ${this.options.outDir}`);
      return;
    }
    this.bundlePem = nextBundle;
    if (bundleChanged) {
      this.log('info', { sha256: sha256(nextBundle) }, 'trust bundle changed; ca.crt rewritten');
      this.emit('bundle', { sha256: sha256(nextBundle) } satisfies BundleEvent);
    }
    if (crlPem) {
      this.crlPem = crlPem;
      this.crlNumber = crlNumber;
      this.log('info', { crlNumber: String(crlNumber) }, 'new CRL; crl.pem rewritten');
      this.emit('crl', { crlNumber } satisfies CrlEvent);
    }
  }

  private fail(err: Error): void {
    if (this.abort.signal.aborted && !isMeshwardError(err)) return;
    this.abort.abort();
    this.watchStream?.cancel();
    this.log('error', { reason: err.message }, 'agent stopped');
    this.settle.reject(err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', fields: object, message: string): void {
    this.options.logger?.[level](fields, message);
  }
}
