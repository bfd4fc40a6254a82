// The answers the sidecar writes itself (refusals, protocol errors, app unreachable), for HTTP/1.1
// responses, raw HTTP/1.1 sockets (parser errors, refused upgrades) and HTTP/2 streams. Bodies are small
// JSON documents whose `error` field is a stable machine word and whose `reason` is a sentence.
import type { ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { encodeGrpcMessage, grpcStatusFor } from './grpc.js';

export interface Refusal {
  status: number;
  /** JSON body (already serialized). */
  body: string;
  /** The sentence for grpc-message. */
  reason: string;
  /** WWW-Authenticate challenges of a 401 (one header line each). */
  challenges?: readonly string[];
}

const ERROR_WORDS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  408: 'request_timeout',
  413: 'payload_too_large',
  429: 'rate_limited',
  431: 'headers_too_large',
  501: 'not_implemented',
  502: 'app_unreachable',
  503: 'unavailable',
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** A refusal with `{"error":…,"reason":…}` plus any extra fields (rule, identity). */
export function refusal(status: number, reason: string, extra?: Record<string, string>): Refusal {
  const doc: Record<string, string> = { error: ERROR_WORDS[status] ?? 'error', reason };
  if (extra !== undefined) Object.assign(doc, extra);
  return { status, body: JSON.stringify(doc), reason };
}

/** Answers an HTTP/1.1 request; `close` also ends the connection (unread body, broken framing, drain). */
export function sendHttp1(res: ServerResponse, r: Refusal, grpc: boolean, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (close) res.shouldKeepAlive = false;
  if (grpc) {
    res.writeHead(200, [
      'content-type', 'application/grpc',
      'grpc-status', String(grpcStatusFor(r.status)),
      'grpc-message', encodeGrpcMessage(r.reason),
      'content-length', '0',
    ]);
    res.end();
    return;
  }
  const headers = [
    'content-type', 'application/json',
    'content-length', String(Buffer.byteLength(r.body)),
    'cache-control', 'no-store',
  ];
  for (const c of r.challenges ?? []) headers.push('www-authenticate', c);
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** Answers on a raw HTTP/1.1 socket the http server no longer owns (parser errors, upgrades) and closes it. */
export function sendRawHttp1(socket: Socket, r: Refusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head =
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(r.body)}\r\n` +
    (r.challenges ?? []).map((c) => `WWW-Authenticate: ${c}\r\n`).join('') +
    'Connection: close\r\n\r\n';
  socket.end(head + r.body, () => socket.destroy());
}

/** Answers an HTTP/2 stream (trailers-only gRPC status for gRPC calls). */
export function sendHttp2(stream: ServerHttp2Stream, r: Refusal, grpc: boolean): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(0x2); // INTERNAL_ERROR: the response already started, so only a reset can say it failed
    return;
  }
  if (grpc) {
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': String(grpcStatusFor(r.status)),
        'grpc-message': encodeGrpcMessage(r.reason),
      },
      { endStream: true },
    );
    return;
  }
  stream.respond({
    ':status': r.status,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(r.body),
    'cache-control': 'no-store',
    ...(r.challenges !== undefined ? { 'www-authenticate': [...r.challenges] } : {}),
  });
  stream.end(r.body);
}
