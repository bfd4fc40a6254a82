// tcp:// apps: the policy's `tcp` scope (and rate limits) checked once when the caller connects, then
// bytes moved both ways. A half-close travels through (one side's end() becomes the other side's
// end()), and an error on either side closes both.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Connection } from '../inbound/connection.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import type { Policy } from '../policy/policy.js';

export interface TcpForwarderOptions {
  app: URL; // tcp://host:port
  policy: () => Policy;
  logger: Logger;
  metrics: SidecarMetrics;
  /** Closes a connection on which nothing moved for this long (0 = never). */
  idleTimeoutMs: number;
}

interface Pair {
  client: TLSSocket;
  app?: Socket;
}

export class TcpForwarder {
  private readonly opts: TcpForwarderOptions;
  private readonly host: string;
  private readonly port: number;
  private readonly pairs = new Map<TLSSocket, Pair>();
  private idleWaiters: (() => void)[] = [];

  constructor(opts: TcpForwarderOptions) {
    this.opts = opts;
    this.host = opts.app.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(opts.app.port);
  }

  accept(client: TLSSocket, conn: Connection): void {
    const policy = this.opts.policy();
    const principal = conn.policy === policy ? conn.principal : policy.principal(conn.identity);
    const decision = policy.connect(principal, Date.now());
    const { logger, metrics } = this.opts;
    const audit = { event: 'tcp_connect', conn: conn.id, peer: conn.remoteAddress, identity: conn.identity.id, rule: decision.rule, reason: decision.reason };
    if (!decision.allow) {
      const label = decision.status === 429 ? 'rate_limited' : 'deny';
      metrics.requestCounter(label, decision.rule, conn.identity.id).inc();
      logger.warn({ ...audit, decision: label }, `tcp connection denied: ${decision.reason}`);
      client.destroy();
      return;
    }
    if (decision.wouldDeny) {
      logger.warn({ ...audit, decision: 'audit_deny' }, `tcp connection would be denied (audit mode): ${decision.reason}`);
    } else {
      logger.info({ ...audit, decision: 'allow' }, 'tcp connection allowed');
    }
    this.forward(client, conn, decision.wouldDeny ? 'audit_deny' : 'allow', decision.rule);
  }

  /**
   * `admitted` (allow, or audit_deny) is counted once the app accepted the connection; an app that cannot
   * be reached counts the connection as upstream_error instead, once, as HTTP counts its 502
   * (docs/metrics.md). A client gone before the app answered still counts as admitted.
   */
  private forward(client: TLSSocket, conn: Connection, admitted: 'allow' | 'audit_deny', rule: string): void {
    const pair: Pair = { client };
    this.pairs.set(client, pair);
    const app = connect({ host: this.host, port: this.port, allowHalfOpen: true });
    pair.app = app;
    let appConnected = false;
    let counted = false;
    const count = (outcome: 'allow' | 'audit_deny' | 'upstream_error') => {
      if (counted) return;
      counted = true;
      this.opts.metrics.requestCounter(outcome, rule, conn.identity.id).inc();
    };
    app.once('connect', () => {
      appConnected = true;
      count(admitted);
    });
    let closed = 0;
    const done = () => {
      if (++closed < 2) return;
      count(admitted);
      this.pairs.delete(client);
      if (this.pairs.size === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    };
    client.once('close', done);
    app.once('close', done);
    const fail = (side: 'client' | 'app') => (err: Error) => {
      const unreachable = side === 'app' && !appConnected;
      if (unreachable) count('upstream_error');
      this.opts.logger.warn(
        { event: 'tcp_error', conn: conn.id, side, error: err.message },
        unreachable ? `app ${this.opts.app.host} unreachable: ${err.message}` : `tcp connection closed: ${side} error`,
      );
      client.destroy();
      app.destroy();
    };
    client.on('error', fail('client'));
    app.on('error', fail('app'));
    if (this.opts.idleTimeoutMs > 0) {
      client.setTimeout(this.opts.idleTimeoutMs, () => {
        this.opts.logger.info({ event: 'tcp_idle', conn: conn.id }, 'tcp connection idle: closed');
        client.destroy();
        app.destroy();
      });
    }
    // pipe() ends the destination when the source ends: exactly the half-close we want to pass on.
    client.pipe(app);
    app.pipe(client);
  }

  /** Ends one connection with a TCP close both ways (what is in flight is still delivered). */
  end(client: TLSSocket): void {
    const pair = this.pairs.get(client);
    if (pair === undefined) {
      client.end();
      return;
    }
    client.end();
    pair.app?.end();
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Waits for open tcp connections to finish on their own, up to timeoutMs, then closes the rest. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.pairs.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.close();
  }

  close(): void {
    for (const p of this.pairs.values()) {
      p.client.destroy();
      p.app?.destroy();
    }
  }
}
