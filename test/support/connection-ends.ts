// Helpers for the tests of connections that end with their credentials: revoking a caller by writing a
// new crl.pem (and waiting until the sidecar loaded it), and plain HTTP/1.1 exchanges on one raw TLS
// socket, so a test knows exactly which connection a request went over and sees its Connection header.
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { clientTlsOptions, metricValue, tlsOpen } from './sidecar.js';
import { crlRevoking, type RunningSidecar } from './running-sidecar.js';
import type { Scenario, SidecarProcess } from './sidecar.js';
import type { TestLeaf } from './pki-fixtures.js';
import { waitFor } from './poll.js';

/** A TLS connection of `leaf` to the sidecar (ALPN as given); errors after the handshake are ignored. */
export async function openAs(r: Pick<RunningSidecar, 'scenario' | 'port'>, leaf: TestLeaf, alpn?: string[]): Promise<TLSSocket> {
  const socket = await tlsOpen(clientTlsOptions(r.scenario.pki, leaf, r.port, alpn ? { ALPNProtocols: alpn } : {}));
  socket.on('error', () => {});
  return socket;
}

/** An HTTP/2 session of `leaf` to the sidecar, resolved once connected; errors after that are ignored. */
export function h2SessionAs(r: Pick<RunningSidecar, 'scenario' | 'port'>, leaf: TestLeaf): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${r.port}`, { ca: r.scenario.pki.bundlePem, cert: leaf.chainPem, key: leaf.keyPem, servername: 'localhost' });
    session.once('connect', () => {
      session.on('error', () => {});
      resolve(session);
    });
    session.once('error', reject);
  });
}

/** One HTTP/2 GET on `session`: the status once the response ended. */
export function h2Get(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':path': path });
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.resume();
    s.on('end', () => resolve(status));
    s.on('error', reject);
    s.end();
  });
}

/** Resolves with the error code of the first GOAWAY the session receives. */
export function goawayOf(session: ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => session.once('goaway', (code: number) => resolve(code)));
}

/** Writes a crl.pem listing `revoked` and resolves once the sidecar counted the credentials reload. */
export async function revokeAndWaitForReload(scenario: Scenario, sidecar: SidecarProcess, revoked: TestLeaf[]): Promise<void> {
  const before = metricValue(await sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' });
  writeFileSync(join(scenario.identityDir, 'crl.pem'), crlRevoking(scenario, revoked));
  await waitFor('the new crl.pem to be loaded', async () =>
    metricValue(await sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' }) > before ? true : undefined,
  );
}

export interface Http1Answer {
  status: number;
  /** Lowercased header names. */
  headers: Record<string, string>;
  body: string;
}

/** The body of a complete chunked message, or undefined while the last chunk has not arrived. */
function dechunk(bytes: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', off);
    if (eol < 0) return undefined;
    const size = parseInt(bytes.subarray(off, eol).toString('latin1'), 16);
    if (size === 0) return bytes.indexOf('\r\n', eol + 2) < 0 ? undefined : Buffer.concat(parts);
    if (bytes.length < eol + 2 + size + 2) return undefined;
    parts.push(bytes.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** Sends one GET on `socket` (keep-alive) and reads one response (Content-Length or chunked). */
export function http1Get(socket: TLSSocket, path: string, timeoutMs = 20_000): Promise<Http1Answer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`GET ${path}: no complete response within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buffered.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const rest = buffered.subarray(end + 4);
      if (headers['transfer-encoding'] === 'chunked') {
        const body = dechunk(rest);
        if (body !== undefined) finish(undefined, { status, headers, body: body.toString() });
        return;
      }
      const length = Number(headers['content-length'] ?? 0);
      if (rest.length < length) return;
      finish(undefined, { status, headers, body: rest.subarray(0, length).toString() });
    };
    const onClose = (): void => finish(new Error(`GET ${path}: the connection closed before a complete response`));
    const finish = (err: Error | undefined, answer?: Http1Answer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err) reject(err);
      else resolve(answer!);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: orders\r\n\r\n`);
  });
}

/** Resolves when the socket has closed (at most timeoutMs), rejecting otherwise. */
export function closed(socket: TLSSocket, what: string, timeoutMs = 20_000): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
