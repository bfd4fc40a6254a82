// The sidecar's side of API credentials (docs/api-credentials.md): it loads the key file and each JWT
// issuer's JWKS (files hot-reloaded, last good kept and the reason logged; URLs fetched, refreshed, and
// refetched on an unknown kid at most once per interval), and runs the pure checks of src/auth/ for one
// request: API key, HMAC signature (plus the replay store every worker shares), JWT. The gate counts each verdict
// (count()) by kind and reason (bounded labels: REFUSAL_REASONS).
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { checkApiKey } from '../../auth/api-key.js';
import { replayRefusal, verifyHttpSignature, type HmacPolicy } from '../../auth/http-signature.js';
import { keySetFromJwks, RefetchGate } from '../../auth/jwks.js';
import { bearerToken, JwtVerifier, unverifiedIssuer } from '../../auth/jwt.js';
import { API_KEY_FILE } from '../../auth/key-file.js';
import { ApiKeySet } from '../../auth/key-set.js';
import type { AuthRequest, AuthVerdict, CredentialKind } from '../../auth/verdict.js';
import { isMeshwardError, MeshwardError } from '../../errors.js';
import type { CounterChild } from '../../metrics/metric.js';
import type { CredentialsConfig, JwtIssuerSettings } from '../config.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import type { ReplayStore } from './replay.js';

/** A JWKS larger than this is not a JWKS (100 keys of RSA-4096 are about 80 KB). */
const MAX_JWKS_BYTES = 1024 * 1024;
const JWKS_FETCH_TIMEOUT_MS = 5_000;

export interface AuthenticatorOptions {
  config: CredentialsConfig | undefined;
  logger: Logger;
  metrics: SidecarMetrics;
  replay: ReplayStore;
}

export class Authenticator {
  private keys = new ApiKeySet([]);
  private keysText?: string;
  private lastKeysFailure?: string;
  readonly jwt: JwtVerifier;
  readonly hmac: HmacPolicy;
  readonly maxBodyBytes: number;
  private readonly issuers: JwtIssuerSettings[];
  private readonly jwksTexts = new Map<string, string>();
  private readonly jwksFailures = new Map<string, string>();
  private readonly gates = new Map<string, RefetchGate>();
  private readonly fetching = new Map<string, Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly logger: Logger;
  private readonly metrics: SidecarMetrics;
  private readonly replay: ReplayStore;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.replay = opts.replay;
    this.issuers = opts.config?.jwt ?? [];
    this.jwt = new JwtVerifier(this.issuers);
    this.hmac = { maxSkewMs: opts.config?.hmac.maxSkewMs ?? 300_000 };
    this.maxBodyBytes = opts.config?.hmac.maxBodyBytes ?? 1024 * 1024;
  }

  /** The files whose folders the sidecar watches (key file, JWKS files). */
  get watchedFiles(): string[] {
    const files = this.issuers.flatMap((i) => (i.jwks.kind === 'file' ? [i.jwks.path] : []));
    if (this.opts.config?.apiKeys !== undefined) files.unshift(this.opts.config.apiKeys);
    return files;
  }

  /**
   * Loads every file now (a problem is a usage error: the sidecar does not start on a broken key file,
   * as with a broken policy) and starts fetching JWKS URLs (tokens of such an issuer get
   * keys_unavailable until the first fetch succeeds).
   */
  start(): void {
    const path = this.opts.config?.apiKeys;
    if (path !== undefined) {
      try {
        this.loadApiKeys(path);
      } catch (err) {
        throw new MeshwardError('usage', describeLoadError(path, 'the API key file (credentials.apiKeys; meshward apikey create writes it)', err));
      }
    }
    for (const issuer of this.issuers) {
      if (issuer.jwks.kind === 'file') {
        try {
          this.loadJwksFile(issuer, issuer.jwks.path);
        } catch (err) {
          throw new MeshwardError('usage', describeLoadError(issuer.jwks.path, `the JWKS of ${issuer.issuer}`, err));
        }
        continue;
      }
      this.gates.set(issuer.issuer, new RefetchGate(issuer.minRefetchIntervalMs));
      void this.fetchJwks(issuer, 'start');
      const timer = setInterval(() => void this.fetchJwks(issuer, 'refresh'), issuer.refreshMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
  }

  /** Re-reads every watched file; unchanged files cost a read and a string compare. */
  reload(): void {
    const path = this.opts.config?.apiKeys;
    if (path !== undefined) this.reloadApiKeys(path);
    for (const issuer of this.issuers) if (issuer.jwks.kind === 'file') this.reloadJwksFile(issuer, issuer.jwks.path);
  }

  private loadApiKeys(path: string): boolean {
    // Read, then parsed only when the text changed (API_KEY_FILE.load would parse every recheck).
    const text = API_KEY_FILE.read(path);
    if (text === this.keysText) return false;
    this.keys = ApiKeySet.fromFile(API_KEY_FILE.parse(text, path));
    this.keysText = text;
    return true;
  }

  private reloadApiKeys(path: string): void {
    try {
      if (!this.loadApiKeys(path)) return;
    } catch (err) {
      this.reloadFailed('apikeys', path, err, this.lastKeysFailure, (m) => (this.lastKeysFailure = m));
      return;
    }
    this.lastKeysFailure = undefined;
    this.metrics.reloads.labels({ kind: 'apikeys', result: 'success' }).inc();
    this.logger.info({ event: 'api_keys_reloaded', path, keys: this.keys.size }, 'API key file reloaded');
  }

  private loadJwksFile(issuer: JwtIssuerSettings, path: string): boolean {
    const text = readFileSync(path, 'utf8');
    if (text === this.jwksTexts.get(issuer.issuer)) return false;
    this.installJwks(issuer, text, path);
    return true;
  }

  private reloadJwksFile(issuer: JwtIssuerSettings, path: string): void {
    try {
      if (!this.loadJwksFile(issuer, path)) return;
    } catch (err) {
      const last = this.jwksFailures.get(issuer.issuer);
      this.reloadFailed('jwks', path, err, last, (m) => this.jwksFailures.set(issuer.issuer, m));
      return;
    }
    this.jwksFailures.delete(issuer.issuer);
    this.metrics.reloads.labels({ kind: 'jwks', result: 'success' }).inc();
    this.logger.info({ event: 'jwks_reloaded', issuer: issuer.issuer, source: path }, 'JWKS reloaded');
  }

  /** Parses and checks a JWKS text and installs it (the verifier drops its token cache). */
  private installJwks(issuer: JwtIssuerSettings, text: string, source: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new MeshwardError('invalid_argument', `${source}: not valid JSON: ${(err as Error).message}`);
    }
    this.jwt.setKeys(issuer.issuer, keySetFromJwks(doc, source));
    this.jwksTexts.set(issuer.issuer, text);
  }

  private reloadFailed(kind: 'apikeys' | 'jwks', path: string, err: unknown, last: string | undefined, remember: (m: string) => void): void {
    const message = describeLoadError(path, 'it', err);
    if (message === last) return; // the periodic re-check sees the same broken file again
    remember(message);
    this.metrics.reloads.labels({ kind, result: 'failure' }).inc();
    this.logger.warn({ event: `${kind === 'apikeys' ? 'api_keys' : 'jwks'}_reload_failed`, path, reason: message }, `reload of ${path} failed, keeping the last good version: ${message}`);
  }

  /** Fetches an issuer's JWKS URL (one fetch at a time per issuer); a failure keeps the keys it has. */
  private fetchJwks(issuer: JwtIssuerSettings, why: 'start' | 'refresh' | 'unknown_kid'): Promise<void> {
    const running = this.fetching.get(issuer.issuer);
    if (running !== undefined) return running;
    const url = (issuer.jwks as { url: string }).url;
    const done = (async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/json' } });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        const length = Number(res.headers.get('content-length') ?? 0);
        if (length > MAX_JWKS_BYTES) throw new Error(`the answer is larger than ${MAX_JWKS_BYTES} bytes`);
        const text = await res.text();
        if (text.length > MAX_JWKS_BYTES) throw new Error(`the answer is larger than ${MAX_JWKS_BYTES} bytes`);
        if (text === this.jwksTexts.get(issuer.issuer)) return;
        this.installJwks(issuer, text, url);
        this.jwksFailures.delete(issuer.issuer);
        this.metrics.reloads.labels({ kind: 'jwks', result: 'success' }).inc();
        this.logger.info({ event: 'jwks_fetched', issuer: issuer.issuer, url, why }, 'JWKS fetched');
      } catch (err) {
        const message = isMeshwardError(err) ? err.message : `${url}: ${(err as Error).message}`;
        this.metrics.reloads.labels({ kind: 'jwks', result: 'failure' }).inc();
        this.logger.warn({ event: 'jwks_fetch_failed', issuer: issuer.issuer, url, why, reason: message }, `fetching the JWKS failed, keeping the keys loaded before (if any): ${message}`);
      } finally {
        this.fetching.delete(issuer.issuer);
      }
    })();
    this.fetching.set(issuer.issuer, done);
    return done;
  }

  /** The verdict on one kind of credential in `req` (sync when nothing has to be awaited). */
  check(kind: CredentialKind, req: AuthRequest, now: number): AuthVerdict | Promise<AuthVerdict> {
    switch (kind) {
      case 'apikey':
        return checkApiKey(req, this.keys, now);
      case 'hmac': {
        const v = verifyHttpSignature(req, this.keys, now, this.hmac);
        if (!v.ok) return v;
        const outcome = this.replay.remember(v.replayKey!, v.replayCreated);
        if (typeof outcome === 'string') return outcome === 'fresh' ? v : replayRefusal(v.keyId!, outcome);
        return outcome.then((o) => (o === 'fresh' ? v : replayRefusal(v.keyId!, o)));
      }
      case 'jwt': {
        const v = this.jwt.check(req, now);
        if (!(v instanceof Promise)) return v;
        return v.then((verdict) => this.afterJwt(verdict, req));
      }
    }
  }

  /** An unknown kid (or keys not loaded yet) of an issuer with a JWKS URL: fetch again, at most once per interval. */
  private async afterJwt(v: AuthVerdict, req: AuthRequest): Promise<AuthVerdict> {
    if (v.ok || (v.reason !== 'unknown_key' && v.reason !== 'keys_unavailable')) return v;
    const found = bearerToken(req);
    if ('ok' in found) return v;
    const iss = unverifiedIssuer(found.token);
    const issuer = this.issuers.find((i) => i.issuer === iss && i.jwks.kind === 'url');
    if (issuer === undefined) return v;
    const running = this.fetching.get(issuer.issuer);
    if (running !== undefined) await running;
    else if (this.gates.get(issuer.issuer)!.tryAcquire(Date.now())) await this.fetchJwks(issuer, 'unknown_kid');
    else return v;
    return this.jwt.verify(found.token, Date.now(), req.peer);
  }

  /**
   * Counts a verdict in meshward_credential_checks_total. Each (kind, result, reason) series is resolved once
   * and held, so a verdict costs one number add; a series appears with its first verdict.
   */
  count(v: AuthVerdict): void {
    if (v.ok) {
      (this.acceptedSeries[v.kind] ??= this.metrics.credentials.labels({ kind: v.kind, result: 'accepted', reason: 'ok' })).inc();
      return;
    }
    const key = `${v.kind}\n${v.reason}`;
    let c = this.refusedSeries.get(key);
    if (c === undefined) {
      c = this.metrics.credentials.labels({ kind: v.kind, result: 'refused', reason: v.reason });
      this.refusedSeries.set(key, c);
    }
    c.inc();
  }

  private readonly acceptedSeries: Partial<Record<CredentialKind, CounterChild>> = {};
  private readonly refusedSeries = new Map<string, CounterChild>();
}

/** One line for a file that could not be loaded: the parser's own message, or "PATH: cannot read WHAT (ENOENT)". */
function describeLoadError(path: string, what: string, err: unknown): string {
  if (isMeshwardError(err)) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  return `${path}: cannot read ${what} (${code ?? String(err)})`;
}
