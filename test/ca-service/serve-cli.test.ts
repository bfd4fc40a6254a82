// `meshward ca serve` as users run it: a child process that logs JSON (one audit line per Sign decision),
// serves `meshward agent --once` with a token from `meshward token create`, and stops cleanly on SIGTERM.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MESHWARD_BIN, runCli } from '../support/cli.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { TD, makeCa, removeDir, tempDir } from './harness.js';
import { waitFor } from '../support/poll.js';

describe('meshward ca serve (child process)', () => {
  let root: string;
  let dir: string;
  let child: ChildProcess;
  let stdout = '';
  let exited: Promise<number | null>;

  before(async () => {
    root = tempDir();
    dir = await makeCa(root);
    child = spawn(process.execPath, [MESHWARD_BIN, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr!.resume();
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  });
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    removeDir(root);
  });

  const lines = (): Record<string, unknown>[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('issues to an agent bootstrapped with a CLI token, audits it, and exits 0 on SIGTERM', async () => {
    const listening = await waitFor('the listening line', () => lines().find((l) => l.event === 'listening'), { timeoutMs: 30_000 });
    const id = `spiffe://${TD}/ns/demo/sa/web`;
    const token = await runCli(['token', 'create', '--ca-dir', dir, '--spiffe-id', id]);
    assert.equal(token.code, 0, token.stderr);
    const out = join(root, 'out');
    const agent = await runCli(['agent', '--ca', `127.0.0.1:${String(listening.port)}`, '--bundle', join(dir, 'bundle.crt'), '--out', out,
      '--spiffe-id', id, '--token', token.stdout.trim(), '--once']);
    assert.equal(agent.code, 0, agent.stderr);
    const leaf = parseCertificate(decodePem(readFileSync(join(out, 'tls.crt')))[0]!.der);
    assert.deepEqual(leaf.uris, [id]);
    const audit = await waitFor('the audit line', () => lines().find((l) => l.event === 'sign' && l.result === 'issued'), { timeoutMs: 10_000 });
    assert.equal(audit.identity, id);
    assert.equal(audit.method, 'token');
    assert.equal(audit.serial, leaf.serialHex);
    assert.match(String(audit.peer), /127\.0\.0\.1:\d+/);
    assert.ok(!stdout.includes('PRIVATE KEY'), 'no key in the log');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
