// The sidecar process: wires configuration, credentials, policy, the inbound listener, the app
// forwarder and the admin server together, keeps credentials and policy hot-reloaded, and drains on
// shutdown. Everything that decides something lives in the modules it imports; this file only
// sequences them.
import { basename, dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MeshwardError, isMeshwardError } from '../errors.js';
import { AdminServer } from './observe/admin.js';
import type { Readiness } from './observe/admin.js';
import { formatHostPort } from './config.js';
import type { ProvisionConfig, SidecarConfig } from './config.js';
import type { Agent, AgentOptions } from '../agent/agent.js';
import type { OutboundListener } from './outbound/outbound.js';
import { CREDENTIAL_FILES, readCredentialFiles, sameFiles, validateCredentials } from './tls/credentials.js';
import { staleCrlProblem } from './tls/crl.js';
import { looseKeyFiles, looseKeyWarning } from '../key-permissions.js';
import type { Credentials } from './tls/credentials.js';
import type { HttpFrontend } from './http/frontend.js';
import { InboundListener } from './inbound/inbound.js';
import { createLogger } from './observe/log.js';
import { SidecarMetrics } from './observe/metrics.js';
import { compilePolicy, parsePolicy } from './policy/policy.js';
import { POLICY_FILE } from './policy/schema.js';
import type { Policy } from './policy/policy.js';
import { TcpForwarder } from './tcp/tcp.js';
import { Authenticator } from './auth/authenticator.js';
import { LocalReplayStore, type ReplayStore } from './auth/replay.js';
import { DEFAULT_MAX_SKEW_MS } from '../auth/http-signature.js';
import { watchDirectory } from './watch.js';
import type { DirectoryWatch } from './watch.js';

/** How often identity.dir is polled while the sidecar is still waiting for its first valid credentials. */
const WAITING_POLL_MS = 500;

export interface SidecarOptions {
  /** false: no admin listener (a cluster worker: the primary serves admin.listen for all of them). */
  admin?: boolean;
  /** Where accepted HMAC signatures are remembered (a cluster worker: the primary, over IPC). */
  replay?: ReplayStore;
}

function address(a: AddressInfo): string {
  return formatHostPort({ host: a.address, port: a.port });
}

export class Sidecar {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  private credentials?: Credentials;
  private credentialsProblem: string;
  private policy?: Policy;
  private policyText?: string;
  private authenticator?: Authenticator;
  private inbound?: InboundListener;
  private inboundStarting = false;
  private frontend?: HttpFrontend;
  private tcp?: TcpForwarder;
  private admin?: AdminServer;
  private watches: DirectoryWatch[] = [];
  private outbound: OutboundListener[] = [];
  outboundAddresses: AddressInfo[] = [];
  private agent?: Agent;
  private agentProblem?: string;
  private waitingTimer?: NodeJS.Timeout;
  /** Fires at the nextUpdate of the CRLs in force, to warn that they went stale. */
  private crlStaleTimer?: NodeJS.Timeout;
  private draining = false;
  private finished!: () => void;
  /** Resolves when shutdown() has finished. */
  readonly done: Promise<void>;
  adminAddress?: AddressInfo;
  inboundAddress?: AddressInfo;

  private readonly options: SidecarOptions;

  constructor(config: SidecarConfig, logger?: Logger, options: SidecarOptions = {}) {
    this.config = config;
    this.options = options;
    this.metrics = new SidecarMetrics({ identityLabels: config.metrics.identities });
    this.logger = logger ?? createLogger(config.log.level);
    this.credentialsProblem = `waiting for credentials in ${config.identity.dir}`;
    this.done = new Promise((resolve) => (this.finished = resolve));
  }

  /** Starts the admin server and watchers, and the inbound listener as soon as credentials are valid. */
  async start(): Promise<void> {
    const { config, logger } = this;
    if (config.policy) this.policy = this.loadInitialPolicy();
    if (config.inbound && config.inbound.protocol !== 'tcp') {
      const replay = this.options.replay ?? new LocalReplayStore(config.credentials?.hmac.maxSkewMs ?? DEFAULT_MAX_SKEW_MS);
      const authenticator = new Authenticator({ config: config.credentials, logger, metrics: this.metrics, replay });
      authenticator.start();
      this.authenticator = authenticator;
      const byDir = new Map<string, string[]>();
      for (const f of authenticator.watchedFiles) byDir.set(dirname(f), [...(byDir.get(dirname(f)) ?? []), basename(f)]);
      for (const [dir, names] of byDir) {
        this.watches.push(watchDirectory(dir, names, () => authenticator.reload(), { recheckIntervalMs: config.identity.recheckIntervalMs }));
      }
    }
    if (this.options.admin !== false) {
      this.admin = new AdminServer(config.admin, this.metrics.registry, (now) => this.readiness(now));
      try {
        this.adminAddress = await this.admin.listen();
      } catch (err) {
        throw new MeshwardError('unavailable', `admin.listen ${formatHostPort(config.admin)}: ${(err as Error).message}`);
      }
      logger.info({ event: 'admin_listening', address: address(this.adminAddress) }, 'admin server listening');
    }

    this.watches.push(
      watchDirectory(config.identity.dir, Object.values(CREDENTIAL_FILES), () => this.reloadCredentials(), {
        recheckIntervalMs: config.identity.recheckIntervalMs,
        onError: (err) => logger.warn({ event: 'watch_error', dir: config.identity.dir, error: String(err) }, 'watching identity.dir failed; relying on the periodic re-check'),
      }),
    );
    if (config.policy?.kind === 'file') {
      const path = config.policy.path;
      this.watches.push(watchDirectory(dirname(path), [basename(path)], () => this.reloadPolicy(path), { recheckIntervalMs: config.identity.recheckIntervalMs }));
    }
    if (config.identity.provision) await this.startAgent(config.identity.provision);
    this.reloadCredentials();
    await this.startOutbound();
    if (!this.credentials) {
      logger.warn({ event: 'credentials_waiting', dir: config.identity.dir, reason: this.credentialsProblem }, this.credentialsProblem);
      this.waitingTimer = setInterval(() => this.reloadCredentials(), WAITING_POLL_MS);
    }
    await this.startInboundIfReady();
    this.started = true;
  }
  /** Set once start() has run; credentials that appear later start the inbound listener themselves. */
  private started = false;

  private loadInitialPolicy(): Policy {
    const source = this.config.policy!;
    try {
      if (source.kind === 'inline') return compilePolicy(source.doc, { file: this.config.source, at: ['policy'] });
      const text = POLICY_FILE.read(source.path);
      this.policyText = text;
      return parsePolicy(text, source.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const message = isMeshwardError(err) ? err.message : `${source.kind === 'file' ? source.path : 'policy'}: cannot read the policy file (${code ?? String(err)})`;
      throw new MeshwardError('usage', message.split('\n')[0]!);
    }
  }

  readiness(now: Date): Readiness {
    if (this.draining) return { ready: false, reason: 'draining: shutting down' };
    if (!this.credentials) {
      const agent = this.agentProblem ? ` (agent: ${this.agentProblem})` : '';
      return { ready: false, reason: `${this.credentialsProblem}${agent}` };
    }
    if (now >= this.credentials.notAfter) {
      return { ready: false, reason: `the certificate in ${this.config.identity.dir} expired at ${this.credentials.notAfter.toISOString()}` };
    }
    if (this.config.inbound && !this.inboundAddress) return { ready: false, reason: 'the inbound listener is not up yet' };
    if (this.outboundAddresses.length < this.config.outbound.length) return { ready: false, reason: 'the outbound listeners are not up yet' };
    const stale = staleCrlProblem(this.credentials.crl, now);
    return stale ? { ready: true, detail: [stale] } : { ready: true };
  }

  /** Reads identity.dir; a valid new set is swapped in, anything else keeps what we have and says why. */
  reloadCredentials(): void {
    if (this.draining) return;
    const dir = this.config.identity.dir;
    let next: Credentials;
    try {
      const files = readCredentialFiles(dir);
      if (this.credentials && sameFiles(files, this.credentials.files)) return;
      next = validateCredentials(files, new Date(), this.credentials);
    } catch (err) {
      const message = isMeshwardError(err) ? err.message : String(err);
      if (!this.credentials) {
        if (message !== this.credentialsProblem) {
          // Missing files while waiting are expected (an agent is coming); anything else is a failed load.
          if (!(isMeshwardError(err) && err.code === 'not_found')) this.metrics.reloads.labels({ kind: 'credentials', result: 'failure' }).inc();
          const missing = isMeshwardError(err) && err.code === 'not_found';
          this.credentialsProblem = missing ? message : `credentials in ${dir} are not usable: ${message}`;
          // Missing files are reported once, as credentials_waiting, by start().
          if (!missing) this.logger.warn({ event: 'credentials_invalid', dir, reason: message }, this.credentialsProblem);
        }
        return;
      }
      if (message === this.lastReloadFailure) return; // the periodic re-check sees the same broken set again
      this.lastReloadFailure = message;
      this.metrics.reloads.labels({ kind: 'credentials', result: 'failure' }).inc();
      this.logger.warn({ event: 'credentials_reload_failed', dir, reason: message, keeping: this.credentials.identity.serialHex }, `credentials reload failed, keeping the current ones: ${message}`);
      return;
    }
    this.lastReloadFailure = undefined;
    const first = !this.credentials;
    const crlChanged = next.crl !== this.credentials?.crl;
    const prev = this.credentials?.files;
    // Only crl.pem changed (a new CRL from the agent): logged as crl_loaded, not as a new certificate.
    const onlyCrl = prev !== undefined && prev.cert.equals(next.files.cert) && prev.key.equals(next.files.key) && prev.ca.equals(next.files.ca);
    this.credentials = next;
    if (next.crlProblem !== undefined) {
      this.metrics.reloads.labels({ kind: 'crl', result: 'failure' }).inc();
      const keeping = next.crl ? `keeping the CRLs loaded before (next update ${next.crl.nextUpdate?.toISOString() ?? 'none'})` : 'no CRL is in force';
      this.logger.warn({ event: 'crl_reload_failed', dir, reason: next.crlProblem, keeping: next.crl ? 'previous' : 'none' }, `crl.pem not used, ${keeping}: ${next.crlProblem}`);
    }
    if (crlChanged) this.crlInForce(next);
    this.inbound?.updateCredentials(next);
    for (const o of this.outbound) o.credentialsChanged();
    this.metrics.reloads.labels({ kind: 'credentials', result: 'success' }).inc();
    this.metrics.certificateNotAfter.set(Math.floor(next.notAfter.getTime() / 1000));
    if (!onlyCrl) {
      this.logger.info(
        { event: first ? 'credentials_loaded' : 'credentials_reloaded', identity: next.identity.id, serial: next.identity.serialHex, notAfter: next.notAfter.toISOString() },
        first ? 'credentials loaded' : 'credentials reloaded',
      );
    }
    for (const f of looseKeyFiles([join(dir, CREDENTIAL_FILES.key)])) {
      this.logger.warn({ event: 'key_file_permissions', path: f.path, mode: f.mode }, looseKeyWarning(f));
    }
    if (first && this.started) {
      if (this.waitingTimer) clearInterval(this.waitingTimer);
      this.waitingTimer = undefined;
      void this.startInboundIfReady().catch((err: Error) => {
        this.logger.error({ event: 'inbound_failed', error: err.message }, `inbound listener failed: ${err.message}`);
        process.exitCode = 1;
        void this.shutdown('inbound listener failed');
      });
    }
  }
  private lastReloadFailure?: string;

  /** New CRLs are in force: the gauge, a log line, and a warning now or at their nextUpdate when they are stale. */
  private crlInForce(c: Credentials): void {
    if (this.crlStaleTimer) clearTimeout(this.crlStaleTimer);
    this.crlStaleTimer = undefined;
    const set = c.crl;
    if (!set) {
      this.metrics.crlNextUpdate.clear();
      return;
    }
    if (set.nextUpdate) this.metrics.crlNextUpdate.set(Math.floor(set.nextUpdate.getTime() / 1000));
    else this.metrics.crlNextUpdate.clear();
    this.logger.info({ event: 'crl_loaded', crls: set.crls.length, revoked: set.revoked.count, nextUpdate: set.nextUpdate?.toISOString() }, 'CRLs in force');
    const warnIfStale = () => {
      const problem = staleCrlProblem(this.credentials?.crl, new Date());
      if (problem && this.credentials?.crl === set) this.logger.warn({ event: 'crl_stale', nextUpdate: set.nextUpdate?.toISOString() }, problem);
    };
    if (!set.nextUpdate) return;
    const inMs = set.nextUpdate.getTime() - Date.now();
    if (inMs <= 0) warnIfStale();
    else {
      this.crlStaleTimer = setTimeout(warnIfStale, Math.min(inMs + 1, 2 ** 31 - 1));
      this.crlStaleTimer.unref();
    }
  }

  private lastPolicyFailure?: string;

  reloadPolicy(path: string): void {
    if (this.draining) return;
    let text: string;
    let next: Policy;
    try {
      text = POLICY_FILE.read(path);
      if (text === this.policyText) return;
      next = parsePolicy(text, path);
    } catch (err) {
      const message = isMeshwardError(err) ? err.message : `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      if (message === this.lastPolicyFailure) return;
      this.lastPolicyFailure = message;
      this.metrics.reloads.labels({ kind: 'policy', result: 'failure' }).inc();
      this.logger.warn({ event: 'policy_reload_failed', path, reason: message }, `policy reload failed, keeping the current policy: ${message}`);
      return;
    }
    this.lastPolicyFailure = undefined;
    this.policyText = text;
    const rateLimitsKept = this.policy ? next.carryRateLimitsFrom(this.policy) : 0;
    this.policy = next;
    this.metrics.reloads.labels({ kind: 'policy', result: 'success' }).inc();
    this.logger.info({ event: 'policy_reloaded', path, mode: next.mode, rateLimitsKept }, 'policy reloaded');
  }

  private async startInboundIfReady(): Promise<void> {
    const inbound = this.config.inbound;
    if (!inbound || !this.credentials || this.inbound || this.inboundStarting || this.draining) return;
    this.inboundStarting = true;
    const { limits } = this.config;
    const policy = () => this.policy!;
    let onConnection;
    let onEnd;
    if (inbound.protocol === 'tcp') {
      const tcp = new TcpForwarder({ app: inbound.app, policy, logger: this.logger, metrics: this.metrics, idleTimeoutMs: limits.idleTimeoutMs });
      this.tcp = tcp;
      onConnection = tcp.accept.bind(tcp);
      onEnd = tcp.end.bind(tcp);
    } else {
      // Loaded on demand: a tcp:// sidecar never needs the HTTP stack.
      const { HttpFrontend } = await import('./http/frontend.js');
      const frontend = new HttpFrontend({
        app: inbound.app,
        policy,
        logger: this.logger,
        metrics: this.metrics,
        allowedLogLevel: this.config.log.allowed,
        headersTimeoutMs: limits.headersTimeoutMs,
        requestTimeoutMs: limits.requestTimeoutMs,
        idleTimeoutMs: limits.idleTimeoutMs,
        maxHeaderSize: limits.maxHeaderSize,
        authenticator: this.authenticator,
      });
      this.frontend = frontend;
      onConnection = frontend.accept.bind(frontend);
      onEnd = frontend.end.bind(frontend);
    }
    const listener = new InboundListener({
      listen: inbound.listen,
      ...(inbound.protocol === 'tcp' ? {} : { alpn: ['h2', 'http/1.1'] }),
      allowHalfOpen: inbound.protocol === 'tcp',
      clientCertificate: inbound.clientCertificate,
      limits,
      credentials: this.credentials,
      policy,
      logger: this.logger,
      metrics: this.metrics,
      onConnection,
      onEnd,
    });
    this.inbound = listener;
    try {
      this.inboundAddress = await listener.listen();
    } catch (err) {
      throw new MeshwardError('unavailable', `inbound.listen ${formatHostPort(inbound.listen)}: ${(err as Error).message}`);
    }
    this.logger.info(
      { event: 'inbound_listening', address: address(this.inboundAddress), app: inbound.app.href, identity: this.credentials.identity.id },
      'inbound listener up',
    );
  }

  /**
   * identity.provision: the renewal agent runs in this process and writes identity.dir, which the
   * watcher above picks up like any other credential change. Loaded on demand (gRPC is heavy).
   */
  private async startAgent(p: ProvisionConfig): Promise<void> {
    const { Agent } = await import('../agent/agent.js');
    const options: AgentOptions = { ca: p.ca, bundleFile: p.bundle, outDir: this.config.identity.dir, logger: this.logger };
    if (p.token !== undefined) options.token = p.token;
    if (p.tokenFile !== undefined) options.tokenFile = p.tokenFile;
    if (p.spiffeId !== undefined) options.spiffeId = p.spiffeId;
    if (p.keyType !== undefined) options.keyType = p.keyType;
    if (p.ttlMs !== undefined) options.ttlMs = p.ttlMs;
    const agent = new Agent(options);
    this.agent = agent;
    agent.on('renewed', () => {
      this.agentProblem = undefined;
      // Don't wait for the file watcher's debounce: the agent has just swapped ..data.
      this.reloadCredentials();
    });
    agent.on('retry', (e: { error: Error }) => (this.agentProblem = e.error.message));
    // A new CRL or bundle: load it now rather than after the watcher's debounce (revocation latency).
    agent.on('crl', () => this.reloadCredentials());
    agent.on('bundle', () => this.reloadCredentials());
    // A fatal agent error (it can no longer authenticate) leaves the current certificate serving until
    // it expires; /readyz then says why. Restarting cannot help, so the sidecar does not exit.
    agent.on('error', (err: Error) => {
      this.agentProblem = err.message;
      this.logger.error({ event: 'agent_failed', error: err.message }, `certificate agent stopped: ${err.message}`);
    });
    agent.start().catch((err: Error) => {
      if (this.agentProblem === err.message) return; // already reported through 'error'
      this.agentProblem = err.message;
      this.logger.error({ event: 'agent_failed', error: err.message }, `certificate agent stopped: ${err.message}`);
    });
  }

  private async startOutbound(): Promise<void> {
    if (this.config.outbound.length === 0) return;
    const { OutboundListener } = await import('./outbound/outbound.js');
    for (const config of this.config.outbound) {
      const listener = new OutboundListener({ config, credentials: () => this.credentials, logger: this.logger, metrics: this.metrics });
      this.outbound.push(listener);
      let bound: AddressInfo;
      try {
        bound = await listener.listen();
      } catch (err) {
        throw new MeshwardError('unavailable', `outbound.listen ${formatHostPort(config.listen)}: ${(err as Error).message}`);
      }
      this.outboundAddresses.push(bound);
      this.logger.info({ event: 'outbound_listening', address: address(bound), upstream: formatHostPort(config.upstream), identity: config.identity }, 'outbound listener up');
    }
  }

  private shuttingDown?: Promise<void>;

  /** Stops accepting, lets in-flight requests finish (up to limits.drainTimeout), closes everything. */
  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= this.drainAndClose(reason);
    return this.shuttingDown;
  }

  private async drainAndClose(reason: string): Promise<void> {
    this.draining = true;
    const timeout = this.config.limits.drainTimeoutMs;
    this.logger.info({ event: 'draining', reason, timeoutMs: timeout, open: this.inbound?.openConnections ?? 0 }, `draining: ${reason}`);
    if (this.waitingTimer) clearInterval(this.waitingTimer);
    if (this.crlStaleTimer) clearTimeout(this.crlStaleTimer);
    const stopped = this.inbound?.stopAccepting();
    await Promise.all([this.frontend?.drain(timeout), this.tcp?.drain(timeout), ...this.outbound.map((o) => o.close(timeout))]);
    await this.agent?.stop();
    this.authenticator?.close();
    this.frontend?.close();
    this.tcp?.close();
    this.inbound?.destroyAll();
    await stopped;
    await Promise.all(this.watches.map((w) => w.close()));
    await this.admin?.close();
    this.logger.info({ event: 'stopped' }, 'sidecar stopped');
    this.finished();
  }
}

/** Builds and starts a sidecar from a validated configuration. */
export async function startSidecar(config: SidecarConfig, logger?: Logger): Promise<Sidecar> {
  const sidecar = new Sidecar(config, logger);
  try {
    await sidecar.start();
  } catch (err) {
    await sidecar.shutdown('start failed');
    throw err;
  }
  return sidecar;
}
