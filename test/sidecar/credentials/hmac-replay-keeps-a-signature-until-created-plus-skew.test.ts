// What the sidecar hands the replay cache besides the replay key: the `created` the verifier checked, carried
// on the verdict (fast path and generic parser alike), never on a refusal. A worker passes it to the primary;
// the store keeps each signature until created + maxSkew (+ its grace).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signRequest, verifyHttpSignature } from '../../../src/auth/http-signature.js';
import type { AuthRequest } from '../../../src/auth/verdict.js';
import { IpcReplayStore, LocalReplayStore, LOCAL_REPLAY_GRACE_MS, type ReplayQuestion } from '../../../src/sidecar/auth/replay.js';
import { keySet, makeKey, NOW, NOW_S, request, withBody } from '../../auth/helpers.js';

describe('the verdict hands the replay cache the created it verified', () => {
  const { key, record } = makeKey();
  const KEYS = keySet(record);
  const signed = (created: number): AuthRequest => {
    const req = withBody(request({ method: 'POST', path: '/payments' }), '{"amount":100}');
    return { ...req, headers: { ...req.headers, ...signRequest(req, { keyId: key.id, secret: key.hmacSecret, created }) } };
  };

  it('on the plain shape clients send and on any other the parser accepts', () => {
    const req = signed(NOW_S - 7);
    const plain = verifyHttpSignature(req, KEYS, NOW, { maxSkewMs: 300_000 });
    assert.ok(plain.ok);
    assert.equal(plain.replayCreated, NOW_S - 7);
    // A leading space (RFC 8941 allows it) takes the generic parser: the same created.
    const spaced = { ...req, headers: { ...req.headers, 'signature-input': ` ${req.headers['signature-input'] as string}` } };
    const generic = verifyHttpSignature(spaced, KEYS, NOW, { maxSkewMs: 300_000 });
    assert.ok(generic.ok);
    assert.equal(generic.replayCreated, NOW_S - 7);
  });

  it('never on a refusal (outside the window)', () => {
    const v = verifyHttpSignature(signed(NOW_S - 301), KEYS, NOW, { maxSkewMs: 300_000 });
    assert.equal(v.ok, false);
    assert.equal((v as { replayCreated?: number }).replayCreated, undefined);
  });
});

describe('replay stores', () => {
  it('a worker sends created to the primary, and nothing when it is unknown', () => {
    const sent: ReplayQuestion[] = [];
    const store = new IpcReplayStore((m) => sent.push(m));
    void store.remember('k1', 1_733_300_000);
    void store.remember('k2');
    assert.equal(sent[0]!.created, 1_733_300_000);
    assert.equal('created' in sent[1]!, false);
    // Answer both so no timer is left behind.
    for (const q of sent) store.onMessage({ type: 'meshward:replay-answer', id: q.id, outcome: 'fresh' });
  });

  it('the local store remembers on the wall clock, with a grace of a second', () => {
    const store = new LocalReplayStore(300_000);
    const nowS = Math.floor(Date.now() / 1000);
    assert.equal(store.remember('a', nowS), 'fresh');
    assert.equal(store.remember('a', nowS), 'replay');
    assert.equal(store.remember('b', nowS), 'fresh');
    assert.equal(store.cache.size, 2);
    assert.equal(LOCAL_REPLAY_GRACE_MS, 1_000);
  });
});
