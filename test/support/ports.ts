// Ports for tests on 127.0.0.1: one that was free a moment ago (for processes that must know each
// other's address before they start), one that nothing listens on (for "connection refused" cases), and
// a server of the test's own listening on a free one (and closed without waiting on keep-alive clients).
import type { Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';

/** Binds 127.0.0.1:0, reads the port the kernel picked, and releases it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A port nothing listens on (bound once, then released); connecting to it is refused. */
export const closedPort = freePort;

/** Starts `server` listening on 127.0.0.1, on a port the kernel picks, and resolves with that port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Closes an HTTP server, dropping its open (keep-alive) connections first so close() does not wait on them. */
export function closeHttpServer(server: HttpServer): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
}
