// Admission of Sign calls (src/ca/server/admission.ts): at most `concurrency` in progress, the rest start in
// arrival order, a full queue refuses at once; through the server, a call refused as busy writes nothing and
// every certificate answered is recorded; `ca serve` refuses nonsense values for its flags.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Admission, AdmissionRefusedError } from '../../src/ca/server/admission.js';
import { grpcStatusOf } from '../../src/ca/server/server.js';
import { runCli } from '../support/cli.js';
import { useCa } from '../support/ca-fixture.js';
import { TD, clientFor, csrFor, memoryLogger, storeCounts, trySign } from './harness.js';
import { waitFor } from '../support/poll.js';
import { Authority } from '../../src/ca/authority.js';

/** Lets every pending promise callback run (the admission hands slots over through promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A client holding a certificate for `id` (issued in the CA's store), so its Sign calls are renewals. */
async function renewingClient(ca: ReturnType<typeof useCa>, id: string): Promise<ReturnType<typeof clientFor>> {
  const a = await Authority.open(ca.dir);
  const current = await a.issue({ spiffeId: id, ttlMs: 600_000 }, new Date()).finally(() => a.close());
  return clientFor(ca.server, ca.dir, { keyPem: current.privateKeyPem, chainPem: current.chainPem });
}

describe('Sign admission', () => {
  it('lets `concurrency` calls in at once and starts the others in arrival order as slots free up', async () => {
    const admission = new Admission(2, 10);
    const started: number[] = [];
    const releases = new Map<number, () => void>();
    for (let i = 0; i < 6; i++) {
      void admission.enter().then((release) => {
        started.push(i);
        releases.set(i, release);
      });
    }
    await settle();
    assert.deepEqual(started, [0, 1]);
    assert.equal(admission.inProgress, 2);
    assert.equal(admission.queued, 4);
    // Released out of order: the slots still go to the oldest waiting calls, one each.
    releases.get(1)!();
    await settle();
    assert.deepEqual(started, [0, 1, 2]);
    releases.get(0)!();
    releases.get(2)!();
    await settle();
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(admission.inProgress, 2);
    assert.equal(admission.queued, 1);
  });

  it('hands a freed slot to a waiting call, not to one that arrives after the release', async () => {
    const admission = new Admission(1, 10);
    const order: string[] = [];
    const first = await admission.enter();
    void admission.enter().then((release) => {
      order.push('waiting');
      release();
    });
    first();
    // Arrives after the release but before the waiting call's promise callback ran.
    void admission.enter().then((release) => {
      order.push('newcomer');
      release();
    });
    await settle();
    assert.deepEqual(order, ['waiting', 'newcomer']);
    assert.equal(admission.inProgress, 0);
    assert.equal(admission.queued, 0);
  });

  it('refuses at once when the queue is full, and a second release of one call frees nothing more', async () => {
    const admission = new Admission(1, 1);
    const release = await admission.enter();
    const waiting = admission.enter();
    await assert.rejects(admission.enter(), (err: unknown) => err instanceof AdmissionRefusedError && /1 Sign calls are already waiting/.test(err.message));
    assert.equal(admission.queued, 1, 'the refused call did not join the queue');
    assert.equal(grpcStatusOf(new AdmissionRefusedError(1)).code, grpc.status.RESOURCE_EXHAUSTED);
    release();
    const second = await waiting;
    release(); // again: ignored, the slot belongs to `second` now
    assert.equal(admission.inProgress, 1);
    let thirdIn = false;
    const third = admission.enter().then((r) => {
      thirdIn = true;
      return r;
    });
    await settle();
    assert.equal(thirdIn, false, 'the slot is still taken by the second call: the third waits');
    assert.equal(admission.queued, 1);
    second();
    (await third)();
    assert.equal(admission.inProgress, 0);
  });

  it('takes a call that gave up while waiting out of the queue at once: its place goes to a live call, its turn is skipped', async () => {
    const admission = new Admission(1, 2);
    const first = await admission.enter();
    const order: string[] = [];
    const gaveUp = new AbortController();
    const abandoned = admission.enter(gaveUp.signal).then(() => order.push('abandoned'));
    const waiting = admission.enter(new AbortController().signal).then((release) => {
      order.push('waiting');
      return release;
    });
    await assert.rejects(admission.enter(), AdmissionRefusedError, 'the queue of 2 is full');
    gaveUp.abort(new Error('caller gone'));
    await assert.rejects(abandoned, /caller gone/);
    assert.equal(admission.queued, 1, 'the abandoned call no longer counts');
    const late = admission.enter().then((release) => {
      order.push('late');
      return release;
    });
    assert.equal(admission.queued, 2, 'a live call took the freed place');
    first();
    (await waiting)();
    (await late)();
    assert.deepEqual(order, ['waiting', 'late'], 'the abandoned call never ran');
    assert.equal(admission.inProgress, 0);
    assert.equal(admission.queued, 0);
    // A signal that is already aborted never joins the queue; one aborted after its turn came changes nothing.
    const held = await admission.enter();
    const aborted = new AbortController();
    aborted.abort(new Error('gone before asking'));
    await assert.rejects(admission.enter(aborted.signal), /gone before asking/);
    const lateAbort = new AbortController();
    const turnFirst = admission.enter(lateAbort.signal);
    held();
    const release = await turnFirst;
    lateAbort.abort(new Error('too late'));
    assert.equal(admission.inProgress, 1);
    release();
    assert.equal(admission.inProgress, 0);
    assert.equal(admission.queued, 0);
  });

  it('refuses a concurrency below 1 or a negative queue', () => {
    assert.throws(() => new Admission(0, 10), RangeError);
    assert.throws(() => new Admission(1.5, 10), RangeError);
    assert.throws(() => new Admission(1, -1), RangeError);
  });
});

describe('Sign admission through the server (one call at a time, no queue)', () => {
  const ca = useCa({ inProcess: { options: { signConcurrency: 1, signQueue: 0 } } });

  it('answers every call issued (recorded) or busy (RESOURCE_EXHAUSTED, nothing written)', async () => {
    const id = `spiffe://${TD}/ns/batch/sa/burst`;
    const client = await renewingClient(ca, id);
    try {
      const before = storeCounts(ca.dir).certificates;
      // Sent together on one connection: they reach the server in the same turns, while the first is in progress.
      const outcomes = await Promise.all(Array.from({ length: 12 }, () => trySign(client, { csr: csrFor(id).csr })));
      const issued = outcomes.filter((o) => o.ok);
      const busy = outcomes.filter((o) => !o.ok);
      assert.ok(issued.length >= 1, 'the first call is always served');
      for (const o of busy) {
        assert.equal(!o.ok && o.code, grpc.status.RESOURCE_EXHAUSTED, JSON.stringify(o));
        assert.match(!o.ok ? o.details : '', /the CA is busy: 0 Sign calls are already waiting; retry with backoff/);
      }
      assert.equal(storeCounts(ca.dir).certificates - before, issued.length, 'exactly the answered certificates were recorded');
      // With the burst over, the next call is served.
      const later = await trySign(client, { csr: csrFor(id).csr });
      assert.ok(later.ok, JSON.stringify(later));
    } finally {
      client.close();
    }
  });
});

describe('Sign admission: callers that give up while waiting', () => {
  const audit = memoryLogger();
  // The audit log kept: every call's decision can be matched to what was recorded.
  const ca = useCa({ inProcess: { options: { signConcurrency: 1, signQueue: 100, logger: audit.logger } } });

  it('issues and records a call, or drops it unworked once its deadline passed in the queue (CANCELLED in the audit, nothing written)', async () => {
    const id = `spiffe://${TD}/ns/batch/sa/impatient`;
    const client = await renewingClient(ca, id);
    try {
      assert.ok((await trySign(client, { csr: csrFor(id).csr })).ok, 'connected and served');
      const before = storeCounts(ca.dir).certificates;
      const auditedBefore = audit.lines.filter((l) => l.event === 'sign').length;
      // One at a time: most of these short deadlines pass while the calls wait behind the others.
      const calls = Array.from({ length: 30 }, () => csrFor(id).csr);
      const answers = await Promise.all(calls.map((csr) => client.sign({ csr, token: '', ttlSeconds: 0 }, 15).then(() => 'issued', (err: grpc.ServiceError) => err.code)));
      for (const answer of answers) assert.ok(answer === 'issued' || answer === grpc.status.DEADLINE_EXCEEDED, String(answer));
      // Every call is decided on the server (issued or dropped), whenever the client stopped waiting.
      const decided = await waitFor('an audit line for each of the 30 calls', () => {
        const lines = audit.lines.filter((l) => l.event === 'sign').slice(auditedBefore);
        return lines.length === calls.length ? lines : undefined;
      }, { timeoutMs: 30_000 });
      const issued = decided.filter((l) => l.result === 'issued');
      for (const l of decided.filter((d) => d.result !== 'issued')) assert.equal(l.code, 'CANCELLED', JSON.stringify(l));
      assert.equal(storeCounts(ca.dir).certificates - before, issued.length, 'each certificate made was recorded, and only those');
      assert.ok(answers.filter((x) => x === 'issued').length <= issued.length, 'no caller got a certificate the server did not record');
    } finally {
      client.close();
    }
  });
});

describe('ca serve admission flags', () => {
  for (const [flag, value] of [['--sign-concurrency', '0'], ['--sign-concurrency', '2.5'], ['--sign-queue', '-1']] as const) {
    it(`refuses ${flag} ${value} as a usage error before starting`, async () => {
      const r = await runCli(['ca', 'serve', '--dir', '/nonexistent-meshward-ca', '--listen', '127.0.0.1:0', flag, value]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`meshward: error: ${flag} must be a whole number of at least ${flag === '--sign-queue' ? 0 : 1}`));
    });
  }
});
