// Ports for tests on 127.0.0.1: one that was free a moment ago (for processes that must know each
// other's address before they start) and one that nothing listens on (for "connection refused" cases).
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

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
