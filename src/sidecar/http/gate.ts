// The per-request policy step shared by HTTP/1.1 and HTTP/2: the connection's principal (re-derived
// only when the policy was reloaded), policy.decide(), the audit line for every denial, the optional
// line for allowed requests, and the request metrics. Everything that depends only on the connection
// or the policy is kept on the Peer, so a request costs one decide() and a few lookups.
import type { Logger } from 'pino';
import type { Connection } from '../inbound/connection.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import type { Decision, Policy, Principal } from '../policy/policy.js';
import type { IdentityHeaders } from './headers.js';

/** The metrics word for how a request ended. */
export type Outcome = 'allow' | 'deny' | 'rate_limited' | 'bad_request' | 'audit_deny' | 'upstream_error';

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
   * The allowed-request logger of this connection: a pino child whose identity and remote address are
   * serialized once, on the connection's first logged request, so each line only adds its own fields.
   */
  log?: Logger;
}

export function outcomeOf(d: Decision): Outcome {
  if (d.allow) return d.wouldDeny ? 'audit_deny' : 'allow';
  return d.status === 429 ? 'rate_limited' : d.status === 400 ? 'bad_request' : 'deny';
}

export interface GateOptions {
  policy: () => Policy;
  logger: Logger;
  metrics: SidecarMetrics;
  allowedLogLevel?: 'info' | 'debug' | 'silent';
}

export class Gate {
  private readonly currentPolicy: () => Policy;
  private readonly logger: Logger;
  private readonly metrics: SidecarMetrics;
  private readonly durations = new Map<string, Observe>();
  /** The level allowed requests are logged at, or undefined when that costs nothing because it is off. */
  private readonly allowedLevel: 'info' | 'debug' | undefined;

  constructor(opts: GateOptions) {
    this.currentPolicy = opts.policy;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    const level = opts.allowedLogLevel ?? 'debug';
    this.allowedLevel = level !== 'silent' && opts.logger.isLevelEnabled(level) ? level : undefined;
  }

  peer(conn: Connection): Peer {
    const policy = this.currentPolicy();
    const principal = policy === conn.policy ? conn.principal : policy.principal(conn.identity);
    return {
      conn,
      policy,
      principal,
      ids: { xfcc: conn.xfcc, clientId: conn.identity.id, scopes: principal.scopeHeader },
    };
  }

  /** policy.decide() with the principal of the policy in force now. */
  decide(peer: Peer, method: string, target: string): Decision {
    const policy = this.currentPolicy();
    if (policy !== peer.policy) {
      peer.policy = policy;
      peer.principal = policy.principal(peer.conn.identity);
      peer.ids.scopes = peer.principal.scopeHeader;
      peer.log = undefined;
    }
    const decision = policy.decide(peer.principal, method, target, Date.now());
    if (decision.wouldDeny || !decision.allow) this.audit(peer, method, target, decision);
    return decision;
  }

  /** The audit line every denial gets (audit mode: the denial enforce mode would have made). */
  private audit(peer: Peer, method: string, target: string, d: Decision): void {
    this.logger.warn(
      {
        event: d.allow ? 'audit_deny' : 'request_denied',
        identity: peer.principal.id,
        remote: peer.conn.remoteAddress,
        method,
        path: target,
        rule: d.rule,
        reason: d.reason,
        status: d.status,
        ...(d.scope !== undefined ? { scope: d.scope } : {}),
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
  done(peer: Peer, outcome: Outcome, rule: string, startedMs: number, method: string, path: string, status: number): void {
    this.count(peer, outcome, rule);
    const seconds = (performance.now() - startedMs) / 1000;
    let h = this.durations.get(outcome);
    if (h === undefined) {
      h = this.metrics.requestDuration.labels({ decision: outcome });
      this.durations.set(outcome, h);
    }
    h.observe(seconds);
    if (this.allowedLevel !== undefined && (outcome === 'allow' || outcome === 'upstream_error')) {
      const log = (peer.log ??= this.logger.child({ identity: peer.principal.id, remote: peer.conn.remoteAddress }));
      log[this.allowedLevel]({ event: 'request', method, path, rule, status, outcome, ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
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
