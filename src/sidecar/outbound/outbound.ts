// Outbound listeners (`outbound` in docs/configuration.md): the app speaks plaintext to 127.0.0.1:PORT and the
// sidecar carries the traffic over mTLS to the upstream sidecar, with its own certificate, after checking
// that the server proves the configured SPIFFE ID. `protocol: http` (the default) serves HTTP/1.1 and
// HTTP/2 with prior knowledge (told apart by the HTTP/2 preface) over pooled upstream connections;
// `protocol: tcp` tunnels bytes, one mTLS connection per app connection.
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Http2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { OutboundConfig } from '../config.js';
import { formatHostPort } from '../config.js';
import type { Credentials } from '../tls/credentials.js';
import type { SidecarMetrics } from '../observe/metrics.js';
import { Http1Upstream, NO_CREDENTIALS } from './http1.js';
import { Http2Upstream, serveHttp2 } from './http2.js';
import { UpstreamTimeout, classifyUpstreamError, describeUpstreamError, limitConnectTime, upstreamIdentityCheck, upstreamTlsOptions } from './upstream-tls.js';
import type { UpstreamIdentityError } from './upstream-tls.js';
import type { CounterChild, HistogramChild } from '../../metrics/metric.js';

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface OutboundOptions {
  config: OutboundConfig;
  /** The sidecar's current credentials (undefined until the first valid set is loaded). */
  credentials: () => Credentials | undefined;
  logger: Logger;
  metrics: SidecarMetrics;
}

export class OutboundListener {
  private readonly server: NetServer;
  private readonly http1: Http1Upstream;
  private readonly http2: Http2Upstream;
  private readonly sockets = new Set<Socket>();
  /** Requests in flight per HTTP/1.1 app connection, so a drain can close idle keep-alive ones at once. */
  private readonly inFlight = new WeakMap<Socket, number>();
  private closing = false;
  /** HTTP/2 sessions with the app: a drain sends them GOAWAY so they stop opening streams. */
  private readonly h2Sessions = new Set<Http2Session>();
  private readonly upstreamName: string;
  private readonly check;
  private readonly requestCount: CounterChild;
  private readonly duration: HistogramChild;

  constructor(private readonly opts: OutboundOptions) {
    const { config, logger } = opts;
    this.upstreamName = formatHostPort(config.upstream);
    this.check = upstreamIdentityCheck(config.identity);
    const tlsFor = (creds: Credentials, alpn: string[]) => upstreamTlsOptions(creds, config.upstream, this.check, alpn);
    const upstream = this.upstreamName;
    const { metrics } = opts;
    const onError = (err: Error) => this.failed(err, 'outbound request failed');
    // This listener's series, resolved once: a request adds to them without a label lookup.
    this.requestCount = metrics.outboundRequests.labels({ upstream });
    this.duration = metrics.outboundDuration.labels({ upstream });
    const started = () => {
      this.requestCount.inc();
      const end = this.duration.startTimer();
      return () => void end();
    };
    const deps = { credentials: opts.credentials, tlsFor, upstreamName: upstream, connectTimeoutMs: config.connectTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, onError, started };
    this.http1 = new Http1Upstream(deps);
    this.http2 = new Http2Upstream(deps);
    const httpServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
      res.on('close', () => {
        const left = (this.inFlight.get(socket) ?? 1) - 1;
        this.inFlight.set(socket, left);
        // While draining, a keep-alive connection goes as soon as its last request is answered.
        if (left === 0 && this.closing) socket.destroySoon();
      });
      this.http1.forward(req, res);
    });
    httpServer.on('clientError', (_err, socket) => socket.destroy());
    // WebSocket and other Upgrade requests: carried through as they are inbound (a tunnel once the upstream agrees).
    httpServer.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.http1.upgrade(req, socket, head));
    this.server = createNetServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      if (config.protocol === 'tcp') {
        this.tunnel(socket);
        return;
      }
      // Tell HTTP/2 (prior knowledge) from HTTP/1.x by the first bytes. A client that closes before
      // sending any (a port probe) is closed too, or the half-open socket would linger in CLOSE_WAIT.
      const closeSilent = () => socket.destroy();
      socket.once('end', closeSilent);
      socket.once('data', (first: Buffer) => {
        socket.off('end', closeSilent);
        socket.pause();
        if (first.subarray(0, 3).equals(HTTP2_PREFACE.subarray(0, 3))) {
          serveHttp2(
            socket,
            first,
            (stream, headers) => this.http2.forward(stream, headers),
            (session) => {
              this.h2Sessions.add(session);
              session.on('close', () => this.h2Sessions.delete(session));
              if (this.closing) session.close();
            },
          );
        } else {
          socket.unshift(first);
          httpServer.emit('connection', socket);
          socket.resume();
        }
      });
    });
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.opts.config.listen;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** New credentials: new upstream connections use them; pooled ones finish what they carry and go. */
  credentialsChanged(): void {
    this.http1.retire();
    this.http2.retire();
  }

  /** Stops accepting, lets in-flight work finish up to `timeoutMs`, then closes what is left. */
  async close(timeoutMs = 0): Promise<void> {
    this.closing = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // Idle HTTP/1.1 connections go now; HTTP/2 ones are told to finish (GOAWAY); the rest at the timeout.
      for (const s of this.sockets) if (this.inFlight.get(s) === 0) s.destroy();
      for (const session of this.h2Sessions) session.close();
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, timeoutMs);
      timer.unref();
    });
    this.http1.retire();
    this.http2.retire();
  }

  /** Logs and counts one upstream failure by reason. */
  private failed(err: Error, message: string): void {
    const presented = (err as Partial<UpstreamIdentityError>).presented;
    const { reason } = classifyUpstreamError(err);
    this.opts.metrics.outboundFailures.labels({ upstream: this.upstreamName, reason }).inc();
    this.opts.logger.warn(
      { event: 'outbound_upstream_error', upstream: this.upstreamName, expected: this.opts.config.identity, presented, reason, error: describeUpstreamError(err, this.upstreamName) },
      message,
    );
  }

  private tunnel(client: Socket): void {
    this.requestCount.inc();
    const end = this.duration.startTimer();
    client.once('close', () => void end());
    const creds = this.opts.credentials();
    if (!creds) {
      this.failed(NO_CREDENTIALS, 'outbound connection refused: no credentials yet');
      client.destroy();
      return;
    }
    client.pause();
    // allowHalfOpen is honoured by tls.connect (it builds a net.Socket) though @types/node omits it.
    const options = { ...upstreamTlsOptions(creds, this.opts.config.upstream, this.check, undefined), allowHalfOpen: true } as ConnectionOptions;
    const upstream = tlsConnect(options);
    const { connectTimeoutMs, idleTimeoutMs } = this.opts.config;
    limitConnectTime(upstream, this.upstreamName, connectTimeoutMs, (err) => upstream.destroy(err));
    upstream.on('secureConnect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    // Nothing moving either way for idleTimeout: both sides are closed.
    client.setTimeout(idleTimeoutMs, () => upstream.destroy(new UpstreamTimeout('idle', this.upstreamName, idleTimeoutMs)));
    upstream.on('error', (err) => {
      if (!upstream.writable || upstream.connecting || !upstream.authorized || (err as Partial<UpstreamTimeout>).code === 'ERR_MESHWARD_UPSTREAM_TIMEOUT') {
        this.failed(err, 'outbound connection failed');
      }
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
