// `meshward ca serve` writes its audit lines through the buffered log (asynchronous writes, several lines per
// write under load): after N Sign calls (issued and refused, ten at a time) and a SIGTERM sent the moment the
// last answer arrives, the output holds exactly N audit lines, one per call, each with the fields it always
// had (pino's epoch-ms time, component ca-server), then the stopping line, and the process exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import { MESHWARD_BIN } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { TD, clientFor, csrFor, removeDir, tempDir, trySign } from './harness.js';

const ISSUED = 20;
const REFUSED = 100;
const root = tempDir();
after(() => removeDir(root));

it('after N Sign calls and SIGTERM, all N audit lines are in the output', async () => {
  const dir = join(root, 'ca');
  const authority = await Authority.init(dir, { trustDomain: TD }, new Date());
  const tokens: { token: string; spiffeId: string }[] = [];
  for (let i = 0; i < ISSUED; i++) tokens.push(await authority.createToken(`spiffe://${TD}/ns/audit/sa/w${i}`, 600_000, new Date()));
  await authority.close();

  const child = spawn(process.execPath, [MESHWARD_BIN, 'ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const lines = (): Record<string, unknown>[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const listening = await waitFor('the listening line', () => lines().find((l) => l.event === 'listening'), { timeoutMs: 30_000 });
    const client = clientFor({ port: Number(listening.port) }, dir);
    const calls = [
      ...tokens.map((t) => () => trySign(client, { csr: csrFor(t.spiffeId).csr, token: t.token })),
      ...Array.from({ length: REFUSED }, (_, i) => () => trySign(client, { csr: csrFor(`spiffe://${TD}/ns/audit/sa/x${i}`).csr, token: `not-a-token-${i}` })),
    ];
    const outcomes = [];
    for (let i = 0; i < calls.length; i += 10) outcomes.push(...(await Promise.all(calls.slice(i, i + 10).map((c) => c()))));
    child.kill('SIGTERM');
    client.close();
    assert.equal(await exited, 0, stderr);

    assert.equal(outcomes.filter((o) => o.ok).length, ISSUED);
    assert.ok(outcomes.filter((o) => !o.ok).every((o) => !o.ok && o.code === grpc.status.UNAUTHENTICATED));
    const audit = lines().filter((l) => l.event === 'sign');
    assert.equal(audit.length, ISSUED + REFUSED, 'one audit line per Sign call');
    const issued = audit.filter((l) => l.result === 'issued');
    assert.deepEqual(issued.map((l) => l.identity).sort(), tokens.map((t) => t.spiffeId).sort());
    assert.deepEqual(Object.keys(issued[0]!), ['level', 'time', 'component', 'event', 'peer', 'method', 'identity', 'serial', 'notAfter', 'result', 'msg']);
    assert.equal(typeof issued[0]!.time, 'number');
    assert.equal(issued[0]!.component, 'ca-server');
    assert.equal(issued[0]!.level, 30);
    const refused = audit.filter((l) => l.result === 'refused');
    assert.equal(refused.length, REFUSED);
    assert.deepEqual(Object.keys(refused[0]!), ['level', 'time', 'component', 'event', 'peer', 'method', 'result', 'code', 'reason', 'msg']);
    assert.equal(refused[0]!.level, 40);
    assert.equal(refused[0]!.code, 'UNAUTHENTICATED');
    // Complete lines only, the stopping line after the last audit line.
    assert.ok(stdout.endsWith('\n'));
    const all = lines();
    const stopping = all.findIndex((l) => l.event === 'stopping');
    const lastSign = all.map((l) => l.event).lastIndexOf('sign');
    assert.ok(stopping > lastSign, 'the stopping line comes after every audit line');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
