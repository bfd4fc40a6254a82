// Header bytes above 0x7f (latin1 text, stray UTF-8, anything a client sends) reach an http:// app
// byte for byte, on an ordinary request and on an upgrade: the sidecar writes request heads as latin1,
// the encoding node decoded them with. (Writing them as UTF-8 turned each such byte into two.) The
// identity headers the sidecar adds carry a certificate Subject with non-ASCII letters as UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { makeScenario, FRONTEND_ID, clientTlsOptions, exchangeHead, startSidecarProcess } from '../support/sidecar.js';
import { listenOnLoopback } from '../support/ports.js';

/** An app on raw TCP that keeps the bytes of each request head and answers 200 (or 101 to an upgrade). */
async function startRawApp(): Promise<{ port: number; heads: Buffer[]; close(): void }> {
  const heads: Buffer[] = [];
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end + 4);
      buf = buf.subarray(end + 4);
      heads.push(Buffer.from(head));
      if (/\r\nupgrade:/i.test(head.toString('latin1'))) socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    socket.on('error', () => {});
  });
  const port = await listenOnLoopback(server as unknown as Parameters<typeof listenOnLoopback>[0]);
  return { port, heads, close: () => server.close() };
}

// Each a header line as bytes: latin1 é, a UTF-8 é, bytes no encoding would produce, obs-text at the end.
const HEADER_LINES = [
  Buffer.from('X-Latin1: caf\xe9', 'latin1'),
  Buffer.concat([Buffer.from('X-Utf8: caf'), Buffer.from('é', 'utf8')]),
  Buffer.from('X-Raw: \x80\x81\xfe\xff', 'latin1'),
];

test('header bytes above 0x7f reach the app unchanged; a Subject with non-ASCII letters arrives as UTF-8', async () => {
  const app = await startRawApp();
  const scenario = makeScenario({ app: `http://127.0.0.1:${app.port}` });
  const sidecar = await startSidecarProcess(scenario.configPath);
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID, cn: 'Müller – ﬁnance' });
    const opts = clientTlsOptions(scenario.pki, leaf, port);
    const lines = Buffer.concat(HEADER_LINES.map((l) => Buffer.concat([l, Buffer.from('\r\n')])));
    const request = Buffer.concat([Buffer.from('GET /orders/1 HTTP/1.1\r\nHost: localhost\r\n'), lines, Buffer.from('\r\n')]);
    const upgrade = Buffer.concat([Buffer.from('GET /orders/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: test\r\n'), lines, Buffer.from('\r\n')]);

    assert.match(await exchangeHead(opts, request), /^HTTP\/1\.1 200 /);
    assert.match(await exchangeHead(opts, upgrade), /^HTTP\/1\.1 101 /);
    assert.equal(app.heads.length, 2);
    for (const [i, head] of app.heads.entries()) {
      const what = i === 0 ? 'request' : 'upgrade';
      for (const line of HEADER_LINES) assert.ok(head.includes(Buffer.concat([Buffer.from('\r\n'), line, Buffer.from('\r\n')])), `${what}: ${JSON.stringify(line.toString('latin1'))} byte for byte`);
      // The Subject of the client certificate, in x-forwarded-client-cert, as its UTF-8 bytes.
      assert.ok(head.includes(Buffer.from('CN=Müller – ﬁnance', 'utf8')), `${what}: the Subject as UTF-8 in ${head.toString('latin1')}`);
    }
  } finally {
    await sidecar.stop();
    app.close();
    scenario.cleanup();
  }
});
