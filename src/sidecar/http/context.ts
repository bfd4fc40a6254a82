// What the HTTP/1.1 and HTTP/2 halves of the frontend share: the gate, the app connection pool, the
// per-connection Peers and the drain state.
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Gate, Peer } from './gate.js';
import type { H2cUpstream } from './upstream-h2c.js';
import type { Http1Upstream } from './upstream-http1.js';

/** HTTP/2 session state: its Peer and the rapid-reset counts. */
export interface SessionState {
  peer: Peer;
  /** Streams the client opened, and how many of them it cancelled before the response was complete. */
  streams: number;
  resets: number;
  /** Streams open now: a session with one is not idle, however long its app takes to answer. */
  open: number;
  /** Closed for abuse (rapid reset). */
  abusive: boolean;
  onStreamClose: (this: ServerHttp2Stream) => void;
}

export class ProxyContext {
  /** HTTP/1.1 connections (keyed by their TLS socket). */
  readonly peers = new WeakMap<Socket, Peer>();
  readonly sessions = new Map<Http2Session, SessionState>();
  /** HTTP/1.1 connections answered with a 400 and closing: later parser errors on them are not news. */
  readonly refused = new WeakSet<Socket>();
  /** Upgraded (WebSocket) connections, tunnelled byte for byte. */
  readonly tunnels = new Set<Socket>();
  /** HTTP/2 sessions by the TLS socket they run on (to end one connection gracefully). */
  readonly sessionOn = new WeakMap<Socket, Http2Session>();
  /** HTTP/1.1 connections being ended (their certificate fell, or they are too old): answers carry Connection: close. */
  readonly ending = new WeakSet<Socket>();
  /** Set while accept() hands a socket to the HTTP/2 server, which creates its session synchronously. */
  pendingPeer: Peer | undefined;
  pendingSocket: Socket | undefined;
  draining = false;
  /** Requests forwarded to the app and not finished. */
  inflight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly gate: Gate,
    /** Exactly one of http1App / h2cApp is set, by the app URL's scheme. */
    readonly http1App: Http1Upstream | undefined,
    readonly h2cApp: H2cUpstream | undefined,
    /** host:port of the app: the Host/:authority when the client sent none. */
    readonly appAuthority: string,
  ) {}

  requestDone(): void {
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
