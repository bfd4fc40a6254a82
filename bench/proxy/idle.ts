// Opens many idle keep-alive mTLS connections to a proxy (a full handshake and one request each, so the
// proxy holds a real client connection, and holds it), for the RSS-with-idle-connections case.
import fs from 'node:fs';
import tls from 'node:tls';

export interface IdleConnections {
  opened: number;
  failed: number;
  firstError?: string;
  close: () => void;
}

export async function openIdleConnections(port: number, path: string, count: number, concurrency: number,
  cert: { crt: string; key: string }): Promise<IdleConnections> {
  const crt = fs.readFileSync(cert.crt);
  const key = fs.readFileSync(cert.key);
  const sockets: tls.TLSSocket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const openOne = () =>
    new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, cert: crt, key, rejectUnauthorized: false, servername: 'localhost' });
      const timer = setTimeout(() => s.destroy(new Error('no response within 10 s')), 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        failed++;
        firstError ??= err.message;
        s.destroy();
        resolve();
      };
      s.once('error', fail);
      s.once('secureConnect', () => {
        s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      });
      let head = '';
      const onData = (c: Buffer) => {
        head += c.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        s.off('data', onData);
        clearTimeout(timer);
        if (!/^HTTP\/1\.1 200 /.test(head)) {
          fail(new Error(`answered ${head.split('\r\n')[0]}`));
          return;
        }
        s.removeListener('error', fail);
        s.on('error', () => undefined); // an idle connection the proxy closes later is not this case's concern
        sockets.push(s);
        resolve();
      };
      s.on('data', onData);
    });
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      await openOne();
    }
  }));
  return { opened: sockets.length, failed, firstError, close: () => sockets.forEach((s) => s.destroy()) };
}
