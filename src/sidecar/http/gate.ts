// The per-request policy step shared by HTTP/1.1 and HTTP/2: the connection's principal (re-derived
// only when the policy was reloaded), policy.decide(), the audit line for every denial, the optional
// line for allowed requests, and the request metrics. Everything that depends only on the connection
// or the policy is kept on the Peer, so a request costs one decide() and a few lookups.
import type { Logger } from 'pino';
import type { AuthRequest, Peer as AuthPeer } from '../../auth/verdict.js';
import { DEFAULT_MAX_SKEW_MS } from '../../auth/http-signature.js';
import { Authenticator } from '../auth/authenticator.js';
import { LocalReplayStore } from '../auth/replay.js';
import type { Connection } from '../inbound/connection.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import { requestLogFor, type RequestLog } from '../observe/request-log.js';
import type { Decision, Policy, Principal, Verdicts } from '../policy/policy.js';
import { headerText, type IdentityHeaders } from './headers.js';

/** The metrics word for how a request ended. */
export type Outcome = 'allow' | 'deny' | 'unauthenticated' | 'rate_limited' | 'bad_request' | 'audit_deny' | 'upstream_error';

interface Observe {
  observe(v: number): void;
}

/** What the frontend keeps per accepted connection. */
export interface Peer {
  readonly conn: Connection;
  policy: Policy;
  principal: Principal;
  readonly ids: IdentityHeaders;
  /**
   * The identity and remote address of this connection as its allowed-request lines carry them: serialized
   * once, on the connection's first logged request (again after a policy reload changed the principal).
   */
  logPart?: string | undefined;
  /** The same as a pino child, when the gate's logger is not createLogger's (tests that pass their own). */
  log?: Logger | undefined;
  /** The mTLS caller as the credential checks see it (boundTo, cnf.x5t#S256); built on first use. */
  authPeer?: AuthPeer | undefined;
}

export function outcomeOf(d: Decision): Outcome {
  if (d.allow) return d.wouldDeny ? 'audit_deny' : 'allow';
  return d.status === 429 ? 'rate_limited' : d.status === 400 ? 'bad_request' : d.status === 401 ? 'unauthenticated' : 'deny';
}

export interface GateOptions {
  policy: () => Policy;
  logger: Logger;
  metrics: SidecarMetrics;
  allowedLogLevel?: 'info' | 'debug' | 'silent';
  /** Checks API credentials on routes with `require` (default: no key file, no JWT issuers). */
  authenticator?: Authenticator | undefined;
}

export class Gate {
  private readonly currentPolicy: () => Policy;
  private readonly logger: Logger;
  private readonly metrics: SidecarMetrics;
  private readonly durations = new Map<string, Observe>();
  /** The level allowed requests are logged at, or undefined when that costs nothing because it is off. */
  private readonly allowedLevel: 'info' | 'debug' | undefined;
  /** Builds the allowed-request lines into the logger's buffer (undefined: they go through pino). */
  private readonly requestLog: RequestLog | undefined;
  readonly authenticator: Authenticator;

  constructor(opts: GateOptions) {
    this.authenticator = opts.authenticator ?? new Authenticator({ config: undefined, logger: opts.logger, metrics: opts.metrics, replay: new LocalReplayStore(DEFAULT_MAX_SKEW_MS) });
    this.currentPolicy = opts.policy;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    const level = opts.allowedLogLevel ?? 'debug';
    this.allowedLevel = level !== 'silent' && opts.logger.isLevelEnabled(level) ? level : undefined;
    this.requestLog = this.allowedLevel !== undefined ? requestLogFor(opts.logger, this.allowedLevel) : undefined;
  }

  peer(conn: Connection): Peer {
    const policy = this.currentPolicy();
    const principal = policy === conn.policy ? conn.principal : policy.principal(conn.identity);
    return {
      conn,
      policy,
      principal,
      ids: { xfcc: headerText(conn.xfcc), clientId: headerText(conn.identity.id), scopes: headerText(principal.scopeHeader) },
    };
  }

  /** policy.decide() with the principal of the policy in force now. */
  decide(peer: Peer, method: string, target: string): Decision {
    const policy = this.currentPolicy();
    if (policy !== peer.policy) {
      peer.policy = policy;
      peer.principal = policy.principal(peer.conn.identity);
      peer.ids.scopes = headerText(peer.principal.scopeHeader);
      peer.logPart = undefined;
      peer.log = undefined;
    }
    const decision = policy.decide(peer.principal, method, target, Date.now());
    if (decision.wouldDeny || !decision.allow) this.audit(peer, method, target, decision);
    return decision;
  }

  /** The mTLS caller for the credential checks, or undefined for a connection without a certificate. */
  authPeer(peer: Peer): AuthPeer | undefined {
    if (peer.authPeer === undefined && !peer.principal.anonymous) {
      const id = peer.conn.identity;
      peer.authPeer = { certificateSha256: Buffer.from(id.fingerprint, 'hex'), ...(id.spiffeId !== undefined ? { spiffeId: id.spiffeId } : {}) };
    }
    return peer.authPeer;
  }

  /**
   * The final decision for a route with `require` (decide() returned it pending): every credential kind the
   * route names is checked, then the policy that made `d` authorizes. Sync unless a JWT has to be verified
   * (a cache miss) or the replay cache is in the cluster primary.
   */
  authenticate(peer: Peer, d: Decision, req: AuthRequest): Decision | Promise<Decision> {
    const policy = peer.policy;
    const principal = peer.principal;
    const now = Date.now();
    const verdicts: Verdicts = {};
    let waits: Promise<void>[] | undefined;
    for (const kind of d.pending!.kinds) {
      const v = this.authenticator.check(kind, req, now);
      if (v instanceof Promise) (waits ??= []).push(v.then((x) => void (verdicts[kind] = x)));
      else verdicts[kind] = v;
    }
    const finish = (): Decision => {
      const final = policy.authorize(d, principal, verdicts, Date.now());
      for (const kind of d.pending!.kinds) {
        const v = verdicts[kind]!;
        // A credential the request did not carry, on a route it passed another way, is not news.
        if (!v.ok && v.reason === 'missing' && final.allow && !final.wouldDeny) continue;
        this.authenticator.count(v);
      }
      if (final.wouldDeny || !final.allow) this.audit(peer, req.method, d.target || req.path, final);
      return final;
    };
    return waits === undefined ? finish() : Promise.all(waits).then(finish);
  }

  /** The audit line every denial gets (audit mode: the denial enforce mode would have made). */
  private audit(peer: Peer, method: string, target: string, d: Decision): void {
    this.logger.warn(
      {
        event: d.allow ? 'audit_deny' : 'request_denied',
        identity: peer.principal.id,
        remote: peer.conn.remoteAddress,
        method,
        // A credential in the query string is refused because URLs end up in logs: not in ours either.
        path: d.refusal === 'in_query' ? `${target.split('?')[0]}?(query removed: it holds a credential)` : target,
        rule: d.rule,
        reason: d.reason,
        status: d.status,
        ...(d.scope !== undefined ? { scope: d.scope } : {}),
        ...(d.credential !== undefined ? { credential: d.credential } : {}),
        ...(d.refusal !== undefined ? { refusal: d.refusal } : {}),
        ...(d.keyId !== undefined ? { keyId: d.keyId } : {}),
      },
      d.allow ? 'request would be denied (audit mode)' : 'request denied',
    );
  }

  /** A request refused before policy ran (broken framing, parser errors): logged and counted. */
  protocolError(peer: Peer | undefined, status: number, reason: string, detail?: Record<string, unknown>): void {
    this.logger.warn(
      {
        event: 'bad_request',
        identity: peer?.principal.id,
        remote: peer?.conn.remoteAddress,
        status,
        reason,
        ...detail,
      },
      'request refused',
    );
    if (peer !== undefined) this.count(peer, 'bad_request', 'protocol');
    else this.metrics.requestCounter('bad_request', 'protocol', 'unknown').inc();
  }

  /** The end of a request: metrics, and the allowed-request line when that level is on. */
  done(peer: Peer, outcome: Outcome, rule: string, startedMs: number, method: string, path: string, status: number, d?: Decision): void {
    this.count(peer, outcome, rule);
    const seconds = (performance.now() - startedMs) / 1000;
    let h = this.durations.get(outcome);
    if (h === undefined) {
      h = this.metrics.requestDuration.labels({ decision: outcome });
      this.durations.set(outcome, h);
    }
    h.observe(seconds);
    if (this.allowedLevel === undefined || (outcome !== 'allow' && outcome !== 'upstream_error')) return;
    const ms = Math.round(seconds * 1e4) / 10;
    const rl = this.requestLog;
    if (rl !== undefined) {
      const part = (peer.logPart ??= rl.connectionPart(peer.principal.id, peer.conn.remoteAddress));
      // Routes with `require`: who the proofs named (x-mesh-principal) and the API key id, never the key.
      rl.write(part, method, path, rule, status, outcome, ms, d?.principals, d?.keyId);
      return;
    }
    const log = (peer.log ??= this.logger.child({ identity: peer.principal.id, remote: peer.conn.remoteAddress }));
    const fields = { event: 'request', method, path, rule, status, outcome, ms };
    if (d?.principals !== undefined) log[this.allowedLevel]({ ...fields, principal: d.principals, ...(d.keyId !== undefined ? { keyId: d.keyId } : {}) }, 'request');
    else log[this.allowedLevel](fields, 'request');
  }

  /** Logs why the app could not be reached (the client gets 502 / gRPC 14). */
  upstreamError(peer: Peer, method: string, path: string, err: Error): void {
    this.logger.error(
      { event: 'upstream_error', identity: peer.principal.id, method, path, error: err.message, code: (err as NodeJS.ErrnoException).code },
      'app unreachable',
    );
  }

  private count(peer: Peer, outcome: Outcome, rule: string): void {
    // Not cached per connection: the caller's label may change when the identity ranking does.
    this.metrics.requestCounter(outcome, rule, peer.principal.id).inc();
  }
}
