// `meshward ca serve` ends on SIGTERM while clients are still connected: a running `meshward agent` holding
// its WatchTrustBundle stream open, a watch stream of the test's own and an idle gRPC channel. A server that
// keeps its clients' sessions after shutdown never lets its process exit, and nothing in the suite noticed such a
// hang before CI's time limit did: here the process must exit 0 on its own, or it is killed and the test fails.
// (The grpc-js 1.14.7 hang with channelz off, src/ca/server/server.ts, was of the in-process kind: the test
// process kept its own client sessions; turned on by hand in this scenario, `ca serve` still exited.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MESHWARD_BIN, runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { TD, clientFor, makeCa, removeDir, tempDir } from './harness.js';
import type { CaClient } from '../../src/agent/client.js';

/** Far above the 5 s grace `ca serve` gives calls in flight: only a process that never exits reaches it. */
const HANG_LIMIT_MS = 60_000;

describe('ca serve on SIGTERM with clients connected', () => {
  let root: string;
  let dir: string;
  let serve: ChildProcess;
  let agent: ChildProcess | undefined;
  let idle: CaClient | undefined;
  let watcher: CaClient | undefined;
  let output = '';

  before(async () => {
    root = tempDir();
    dir = await makeCa(root);
    serve = spawn(process.execPath, [MESHWARD_BIN, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
    serve.stderr!.on('data', (b: Buffer) => { output += b.toString(); });
  });

  after(() => {
    agent?.kill('SIGKILL');
    idle?.close();
    watcher?.close();
    if (serve.exitCode === null) serve.kill('SIGKILL');
    removeDir(root);
  });

  it('exits 0 while an agent and a client watch the bundle and another channel sits idle', async () => {
    const port = await waitFor('the listening line', () => /"event":"listening"[^\n]*"port":(\d+)/.exec(output)?.[1], { timeoutMs: 30_000 });
    const id = `spiffe://${TD}/ns/demo/sa/watcher`;
    const token = await runCli(['token', 'create', '--ca-dir', dir, '--spiffe-id', id]);
    assert.equal(token.code, 0, token.stderr);
    const out = join(root, 'out');
    let agentLog = '';
    agent = spawn(process.execPath, [MESHWARD_BIN, 'agent', '--ca', `127.0.0.1:${port}`, '--bundle', join(dir, 'bundle.crt'), '--out', out,
      '--spiffe-id', id, '--token', token.stdout.trim(), '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (b: Buffer) => { agentLog += b.toString(); });
    await waitFor('the agent\'s certificate', () => existsSync(join(out, 'tls.crt')) || undefined, { timeoutMs: 30_000 });
    // Beside the agent: a watch stream of our own (its first message proves it open) and an idle channel.
    watcher = clientFor({ port: Number(port) }, dir);
    const stream = watcher.watchTrustBundle();
    stream.on('error', () => {});
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    idle = clientFor({ port: Number(port) }, dir);
    await idle.getCrl(10_000);

    const exited = new Promise<number | null>((resolve) => serve.once('exit', (code) => resolve(code)));
    serve.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), HANG_LIMIT_MS); }),
    ]);
    clearTimeout(timer);
    assert.notEqual(code, 'hung', `ca serve still running ${HANG_LIMIT_MS / 1000} s after SIGTERM with clients connected:\n${output}\nagent:\n${agentLog}`);
    assert.equal(code, 0, output);
    assert.equal(agent.exitCode, null, 'the agent keeps running (it reconnects with backoff)');
  });
});
