// limits.drainTimeout (3s here) on SIGTERM, with real clients in flight: a request that finishes within it
// completes (curl, HTTP/1.1), requests that outlast it (curl over HTTP/1.1, a node:http2 stream, an
// `openssl s_client` tcp:// connection left open) are cut when it runs out, and the process exits 0 soon
// after, long before the app would have answered them. sigterm-drains-in-flight-requests covers the
// default drainTimeout with requests that all finish. Only bounds a loaded machine meets are asserted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import { FRONTEND_ID, clientTlsOptions, exchange, makeScenario, startEchoHttpApp, startSidecarProcess, startTcpEchoApp, tlsOpen } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';

const DRAIN_TIMEOUT_MS = 3000;
/** How long the app takes for the requests that outlast the drain: far beyond it. */
const OUTLASTING_MS = 60_000;
/** Upper bound for "exits soon after drainTimeout" on a slow, shared machine; still far below OUTLASTING_MS. */
const EXIT_WITHIN_MS = DRAIN_TIMEOUT_MS + 20_000;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client process (curl, openssl) and resolves when it exits; `kill` ends it in cleanup. */
function run(cmd: string, args: string[], stdin?: string): { done: Promise<Finished>; kill(): void } {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  if (stdin !== undefined) child.stdin.write(stdin); // stdin stays open: s_client keeps the connection
  else child.stdin.end();
  const done = new Promise<Finished>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { done, kill: () => child.exitCode === null && child.kill('SIGKILL') };
}

describe('limits.drainTimeout on SIGTERM', () => {
  let httpApp: EchoHttpApp;
  let tcpApp: TcpEchoApp;
  const scenarios: Scenario[] = [];
  const cleanups: (() => void)[] = [];

  before(async () => {
    httpApp = await startEchoHttpApp();
    tcpApp = await startTcpEchoApp();
  });
  after(async () => {
    for (const c of cleanups) c();
    await httpApp?.close();
    await tcpApp?.close();
    for (const s of scenarios) s.cleanup();
  });

  async function start(app: string): Promise<{ scenario: Scenario; sidecar: SidecarProcess; port: number }> {
    const scenario = makeScenario({ app, config: { limits: { drainTimeout: `${DRAIN_TIMEOUT_MS / 1000}s` } } });
    scenarios.push(scenario);
    const sidecar = await startSidecarProcess(scenario.configPath);
    cleanups.push(() => void sidecar.stop('SIGKILL'));
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    return { scenario, sidecar, port };
  }

  /** SIGTERM; resolves with the exit code and the milliseconds from the signal to the exit. */
  async function terminate(sidecar: SidecarProcess): Promise<{ exit: number | string; ms: number }> {
    const t0 = Date.now();
    const exit = await sidecar.stop('SIGTERM', OUTLASTING_MS);
    return { exit, ms: Date.now() - t0 };
  }

  it('HTTP: what finishes within drainTimeout completes, what outlasts it is cut, the process exits soon after', async (t) => {
    const { scenario, sidecar, port } = await start(httpApp.url);
    const leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    const files = scenario.clientFiles(leaf, 'frontend');
    const curl = (path: string) => {
      const c = run('curl', [
        '-sS', '--http1.1', '--max-time', String(OUTLASTING_MS / 1000 + 30), '-o', '/dev/null', '-w', '%{http_code}',
        '--cacert', files.ca, '--cert', files.cert, '--key', files.key,
        '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}${path}`,
      ]);
      cleanups.push(c.kill);
      return c.done;
    };
    const session = http2.connect(`https://127.0.0.1:${port}`, clientTlsOptions(scenario.pki, leaf, port));
    session.on('error', () => {});
    cleanups.push(() => session.destroy());

    const seenBefore = httpApp.seen.length;
    const finishing = curl('/slow?ms=1000');
    const outlasting = curl(`/slow?ms=${OUTLASTING_MS}`);
    const h2Outlasting = new Promise<string>((resolve) => {
      const stream = session.request({ ':path': `/slow?ms=${OUTLASTING_MS}` });
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.resume();
      stream.on('end', () => resolve(`ended with ${status}`));
      stream.on('error', (err) => resolve(`error: ${err.message}`));
      stream.on('close', () => resolve(`closed (rstCode ${stream.rstCode}, status ${status})`));
    });
    // Signal only once all three have reached the app: they are truly in flight.
    await waitFor('the three requests to reach the app', () => (httpApp.seen.length >= seenBefore + 3 ? true : undefined));

    const { exit, ms } = await terminate(sidecar);
    t.diagnostic(`exit ${exit} ${ms} ms after SIGTERM (drainTimeout ${DRAIN_TIMEOUT_MS} ms)`);
    assert.equal(exit, 0);
    assert.ok(ms >= DRAIN_TIMEOUT_MS - 100, `exited after ${ms} ms: not before drainTimeout, since requests were still in flight`);
    assert.ok(ms < EXIT_WITHIN_MS, `exited ${ms} ms after SIGTERM: soon after drainTimeout, not when the app answers`);

    const short = await finishing;
    assert.equal(short.stdout, '200', `the request that finished within drainTimeout completed (curl: ${short.stderr})`);
    const cut = await outlasting;
    assert.notEqual(cut.code, 0, 'curl reports the cut request as failed');
    assert.notEqual(cut.stdout, '200');
    const h2 = await h2Outlasting;
    assert.doesNotMatch(h2, /ended with 200/, `the HTTP/2 stream was cut (${h2})`);
    const draining = sidecar.logs.find((l) => l.event === 'draining');
    assert.equal(draining?.timeoutMs, DRAIN_TIMEOUT_MS);
  });

  it('tcp://: a connection still open when drainTimeout runs out is closed, the process exits soon after', async (t) => {
    const { scenario, sidecar, port } = await start(`tcp://127.0.0.1:${tcpApp.port}`);
    const files = scenario.clientFiles(scenario.pki.leaf({ spiffeId: FRONTEND_ID }), 'frontend');
    // openssl s_client with its stdin kept open holds the connection until the server closes it.
    const sClient = run('openssl', [
      's_client', '-quiet', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-verify_return_error',
      // -cert sends the leaf only; -cert_chain adds the intermediate from the same file (curl sends the whole file).
      '-CAfile', files.ca, '-cert', files.cert, '-cert_chain', files.cert, '-key', files.key,
    ], 'held open\n');
    cleanups.push(sClient.kill);
    // And a node:tls caller that exchanges bytes during the drain: the connection keeps working until the cut.
    const socket = await tlsOpen(clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port));
    cleanups.push(() => socket.destroy());
    assert.equal(await exchange(socket, 'before'), 'before');
    await waitFor('both connections to reach the app', () => (tcpApp.accepted >= 2 ? true : undefined));
    let socketClosed = false;
    socket.on('close', () => (socketClosed = true));
    socket.on('error', () => {});

    const stopping = terminate(sidecar);
    await sidecar.waitForLog((l) => l.event === 'draining', 'the drain to start');
    assert.equal(await exchange(socket, 'during'), 'during', 'bytes still flow while draining');
    const { exit, ms } = await stopping;
    t.diagnostic(`exit ${exit} ${ms} ms after SIGTERM (drainTimeout ${DRAIN_TIMEOUT_MS} ms)`);
    assert.equal(exit, 0);
    assert.ok(ms >= DRAIN_TIMEOUT_MS - 100, `exited after ${ms} ms: the open connections were given drainTimeout`);
    assert.ok(ms < EXIT_WITHIN_MS, `exited ${ms} ms after SIGTERM`);
    await waitFor('the node:tls connection to be closed', () => (socketClosed ? true : undefined));
    const s = await sClient.done;
    assert.match(s.stdout, /held open/, 'openssl s_client got its bytes echoed before the cut');
  });
});
