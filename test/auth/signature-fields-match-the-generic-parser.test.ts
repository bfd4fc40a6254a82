// The fast path for Signature-Input, Signature and Content-Digest (src/auth/signature-fields.ts) never changes a
// verdict (fast-check, random valid and hostile field values):
// - whatever the fast readers accept, the generic RFC 8941 parser accepts too and reads the same label, names,
//   parameters and bytes, and the inner list as sent is exactly serializeInnerList() of the generic result
//   (the `@signature-params` line is the same);
// - verifyHttpSignature gives the same verdict (reason and message included) for a request as for the same
//   request with a space in front of each field. The space means nothing to RFC 8941 (parsers drop leading
//   spaces) but keeps the fast path out, so the second verdict is the generic parser's. Signatures are made
//   over the generic parser's signature base, so a request accepted both ways had the same base both ways.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { signatureBase, verifyHttpSignature } from '../../src/auth/http-signature.js';
import { canonicalByteSequence, flatParams, parseCanonicalSignatureInput } from '../../src/auth/signature-fields.js';
import { parseDictionary, serializeInnerList, type Dictionary, type InnerList } from '../../src/auth/structured-fields.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { keySet, makeKey, NOW, NOW_S, request, withBody } from './helpers.js';

const RUNS = { numRuns: 3000 };
const { key, record } = makeKey();
const KEYS = keySet(record);
const POLICY = { maxSkewMs: 300_000 };

const tryParse = (text: string): Dictionary | undefined => {
  try {
    return parseDictionary(text);
  } catch {
    return undefined;
  }
};

// Pieces of Signature-Input, mostly valid, often hostile: every branch of the fast reader and of the checks after it.
const label = fc.constantFrom('sig1', 'sig1', 'sig1', 'a*', 'x-1.2_', 'Sig1', '1sig', '', 'sig 1');
const component = fc.constantFrom(
  '@method', '@authority', '@path', '@query', 'content-digest', 'x-tag', '@target-uri', '@request-target', '@scheme',
  '@status', '@Method', 'X-Tag', '', 'x tag', 'x"q', 'a\\"b', 'caf\u00e9', 'x-missing',
);
const itemSuffix = fc.constantFrom('', '', '', '', ';sf', ';key="a"', ';bs');
const itemSeparator = fc.constantFrom(' ', ' ', ' ', ' ', '  ', '\t', '');
const integerText = fc.constantFrom(String(NOW_S), String(NOW_S), String(NOW_S + 600), '0', '0123', '-5', '-0', '1.5', '1234567890123456', '123456789012345', 'abc', '?1', '"1"', ':AAAA:');
const paramValue = (k: string) => {
  switch (k) {
    case 'created':
    case 'expires':
      return integerText;
    case 'keyid':
      return fc.constantFrom(`"${key.id}"`, `"${key.id}"`, '"unknown-key-id"', key.id, '""', `"${key.id}\\"x"`);
    case 'alg':
      return fc.constantFrom('"hmac-sha256"', '"hmac-sha256"', '"rsa-pss-sha512"', 'hmac-sha256', '1');
    default:
      return fc.constantFrom('"n1"', '"a\\\\b"', '"x\\"y"', '1', 'tok', '?0', '"\u00e9"', '"tab\there"');
  }
};
const param = fc.constantFrom('created', 'created', 'keyid', 'keyid', 'alg', 'expires', 'nonce', 'tag', 'foo', 'Created')
  .chain((k) => fc.tuple(fc.constant(k), paramValue(k), fc.constantFrom(';', ';', ';', '; '), fc.boolean(), fc.nat(9)))
  .map(([k, v, sep, withValue, n]) => (withValue || n > 0 ? `${sep}${k}=${v}` : `${sep}${k}`));
const hostileInput = fc.record({
  label,
  items: fc.array(fc.tuple(component, itemSuffix, itemSeparator), { maxLength: 6 }),
  open: fc.constantFrom('(', '(', '(', '( '),
  close: fc.constantFrom(')', ')', ')', ' )'),
  params: fc.array(param, { maxLength: 6 }),
  tail: fc.constantFrom('', '', '', '', ' ', '\t', ', sig2=("@method")', ',', 'x'),
  many: fc.nat(40),
}).map(({ label: l, items, open, close, params, tail, many }) => {
  // Now and then more than the 32 components a signature may cover.
  const list = many === 0 ? Array.from({ length: 33 }, (_, i) => [`x-h${i}`, '', ' '] as const) : items;
  const inner = list.map(([c, suffix, sep], i) => `"${c}"${suffix}${i < list.length - 1 ? sep : ''}`).join('');
  return `${l}=${open}${inner}${close}${params.join('')}${tail}`;
});
// The canonical shape the fast reader takes, with valid and invalid content: what a signer sends, give or take.
const canonicalInput = fc.record({
  label: fc.constantFrom('sig1', 'sig1', 'a*', 'x-1.2_'),
  names: fc.oneof(
    // Everything the policy wants covered, in any order, with or without x-tag.
    { weight: 4, arbitrary: fc.tuple(fc.shuffledSubarray(['@method', '@authority', '@path', '@query', 'content-digest', 'x-tag'], { minLength: 5 }), fc.boolean()).map(([n, tag]) => (tag ? n : n.filter((x) => x !== 'x-tag'))) },
    { weight: 1, arbitrary: fc.shuffledSubarray(['@method', '@authority', '@path', '@query', 'content-digest', 'x-tag'], { minLength: 2 }) },
    { weight: 1, arbitrary: fc.array(component.filter((c) => !c.includes('"') && !c.includes('\\') && /^[ -~]*$/.test(c)), { maxLength: 6 }).map((xs): string[] => [...xs]) },
  ),
  created: fc.constantFrom(String(NOW_S), String(NOW_S), String(NOW_S), String(NOW_S - 3600), '0', '123456789012345'),
  keyid: fc.constantFrom(`"${key.id}"`, `"${key.id}"`, `"${key.id}"`, `"${key.id}"`, `"${key.id}"`, '"unknown-key-id"', '""'),
  extra: fc.oneof(
    { weight: 3, arbitrary: fc.shuffledSubarray(['alg="hmac-sha256"', 'nonce="n1"', 'tag="app"', `expires=${NOW_S + 60}`]) },
    { weight: 1, arbitrary: fc.shuffledSubarray(['alg="hmac-sha256"', 'alg="rsa-pss-sha512"', 'nonce="n1"', `expires=${NOW_S - 60}`, 'foo="x"', 'nonce=1', 'alg=7'], { maxLength: 3 }) },
  ),
  drop: fc.nat(30),
}).map(({ label: l, names, created, keyid, extra, drop }) => {
  const params = [`created=${created}`, `keyid=${keyid}`, ...extra];
  if (drop < params.length) params.splice(drop, 1); // now and then without created or keyid
  return `${l}=(${names.map((n) => `"${n}"`).join(' ')})${params.map((p) => `;${p}`).join('')}`;
});
// A canonical value with one or two characters inserted, replaced or deleted: the near misses a fast reader
// must send to the generic parser (a space, a second `;`, an escape, a leading zero, a sign, a colon...).
const edit = fc.tuple(fc.nat(), fc.constantFrom(' ', '\t', ';', '=', '(', ')', '"', '\\', ':', ',', '?', '*', '-', '.', '0', '1', 'A', 'a', '\u00e9'), fc.constantFrom('insert', 'replace', 'delete'));
const nearMiss = fc.tuple(canonicalInput, fc.array(edit, { minLength: 1, maxLength: 2 })).map(([text, edits]) => {
  let t = text;
  for (const [at, c, how] of edits) {
    const i = at % (t.length + 1);
    t = how === 'insert' ? t.slice(0, i) + c + t.slice(i) : how === 'replace' ? t.slice(0, i) + c + t.slice(i + 1) : t.slice(0, i) + t.slice(i + 1);
  }
  return t;
});
// Parameters repeated, or given values of another type or a non-canonical form.
const oddParams = fc.tuple(canonicalInput, fc.constantFrom(`;created=${NOW_S}`, `;keyid="${key.id}"`, ';created=0123', ';created=-0', ';expires=1.5', ';nonce=tok', ';alg=?1', ';tag=:AAAA:', ';created=1234567890123456', ';created=000', ';x', ';nonce="a\\"b"'))
  .map(([text, extra]) => text + extra);
const signatureInput = fc.oneof(
  { weight: 3, arbitrary: canonicalInput },
  { weight: 3, arbitrary: nearMiss },
  { weight: 1, arbitrary: oddParams },
  { weight: 2, arbitrary: hostileInput },
);

/** A POST with a body and a query, as the sidecar hands it in, with the x-tag header to cover. */
const baseRequest = (): AuthRequest => withBody(request({ method: 'POST', path: '/payments', query: 'currency=EUR', headers: { 'x-tag': 'blue' } }), '{"amount":100}');

/** The HMAC of the generic parser's signature base for `input`, when it has one, else random-looking bytes. */
function rightSignature(req: AuthRequest, input: string): Buffer | undefined {
  const dict = tryParse(input);
  if (dict === undefined || dict.size !== 1) return undefined;
  const list = [...dict.values()][0]!;
  if (list.kind !== 'innerList') return undefined;
  try {
    return createHmac('sha256', key.hmacSecret).update(signatureBase(req, list)).digest();
  } catch {
    return undefined; // a component the request lacks, or one the verifier refuses
  }
}

const signatureKind = fc.constantFrom('right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'other', 'short', 'noncanonical', 'wrong-label', 'two', 'spaced', 'token');
function signatureText(kind: string, lbl: string, right: Buffer | undefined): string {
  const bytes = right ?? Buffer.alloc(32, 7);
  switch (kind) {
    case 'right': return `${lbl}=:${bytes.toString('base64')}:`;
    case 'other': return `${lbl}=:${Buffer.alloc(32, 1).toString('base64')}:`;
    case 'short': return `${lbl}=:${bytes.subarray(0, 31).toString('base64')}:`;
    // The last character before "=" with unused bits set: the same bytes to a lenient decoder.
    case 'noncanonical': return `${lbl}=:${bytes.toString('base64').replace(/.=$/, (m) => (m[0] === 'B' ? 'C=' : 'B='))}:`;
    case 'wrong-label': return `other=:${bytes.toString('base64')}:`;
    case 'two': return `${lbl}=:${bytes.toString('base64')}:, sig2=:${bytes.toString('base64')}:`;
    case 'spaced': return `${lbl}=:${bytes.toString('base64')}: `;
    default: return `${lbl}=abc`;
  }
}

const digestKind = fc.constantFrom('right', 'right', 'right', 'right', 'right', 'right', 'wrong', 'short', 'with-sha512', 'param', 'token', 'none');
function digestText(kind: string, right: string): string | undefined {
  const b64 = right.slice('sha-256=:'.length, -1);
  switch (kind) {
    case 'right': return right;
    case 'wrong': return `sha-256=:${Buffer.alloc(32, 3).toString('base64')}:`;
    case 'short': return `sha-256=:${Buffer.from(b64, 'base64').subarray(1).toString('base64')}:`;
    case 'with-sha512': return `sha-512=:${Buffer.alloc(64).toString('base64')}:, ${right}`;
    case 'param': return `${right};x=1`;
    case 'token': return 'sha-256=abc';
    default: return undefined;
  }
}

describe('the fast Signature-Input / Signature / Content-Digest readers agree with the generic parser', () => {
  it('whatever the fast reader accepts, the generic parser reads the same, and the list as sent is its serialization', () => {
    let fast = 0;
    fc.assert(fc.property(signatureInput, (text) => {
      const f = parseCanonicalSignatureInput(text);
      if (f === undefined) return;
      fast++;
      const dict = tryParse(text);
      assert.ok(dict !== undefined, `the fast reader accepted what the generic parser refuses: ${text}`);
      assert.deepEqual([...dict.keys()], [f.label]);
      const list = dict.get(f.label) as InnerList;
      assert.equal(list.kind, 'innerList');
      assert.deepEqual(list.items.map((i) => [i.value.type, i.value.value, i.params.length]), f.names.map((n) => ['string', n, 0]));
      assert.deepEqual(flatParams(list.params), f.params);
      assert.equal(serializeInnerList(list), f.serialized);
    }), RUNS);
    assert.ok(fast > RUNS.numRuns / 10, `only ${fast} of ${RUNS.numRuns} inputs took the fast path`);
  });

  it('whatever the fast byte-sequence reader accepts, the generic parser reads as the same bytes', () => {
    const text = fc.tuple(label, fc.constantFrom(':', ':', ':', ':', '', ' :'), fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')) },
      { weight: 1, arbitrary: fc.base64String({ maxLength: 48 }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    ), fc.constantFrom(':', ':', ':', ':', '', ': ', ':;a'), fc.nat(4))
      .map(([l, open, body, close, right]) => ({ lbl: l, text: `${right > 0 ? l : 'sig1'}=${open}${body}${close}` }));
    let fast = 0;
    fc.assert(fc.property(text, ({ lbl, text: t }) => {
      const b64 = canonicalByteSequence(t, lbl);
      if (b64 === undefined) return;
      fast++;
      const dict = tryParse(t);
      assert.ok(dict !== undefined, `the fast reader accepted what the generic parser refuses: ${t}`);
      assert.deepEqual([...dict.keys()], [lbl]);
      const item = dict.get(lbl)!;
      assert.ok(item.kind === 'item' && item.value.type === 'bytes' && item.params.length === 0);
      assert.equal(item.value.value.toString('base64'), b64);
    }), RUNS);
    assert.ok(fast > RUNS.numRuns / 10, `only ${fast} of ${RUNS.numRuns} inputs took the fast path`);
  });

  it('verifyHttpSignature gives the same verdict with the fast path as without it (random valid and hostile fields)', () => {
    const seen = { fastOk: 0, fastRefused: 0 };
    const reasons = new Set<string>();
    fc.assert(fc.property(signatureInput, signatureKind, digestKind, (input, sigKind, dKind) => {
      const plain = baseRequest();
      const digest = digestText(dKind, String(plain.headers['content-digest']));
      // Signed over the Content-Digest sent, right or wrong: the digest check then has its say.
      const req = { ...plain, headers: { ...plain.headers, 'content-digest': digest } };
      const right = rightSignature(req, input);
      const lbl = parseCanonicalSignatureInput(input)?.label ?? [...(tryParse(input)?.keys() ?? ['sig1'])][0]!;
      const signature = signatureText(sigKind, lbl, right);
      const headers = { ...req.headers, 'signature-input': input, signature, 'content-digest': digest };
      const spaced = { ...req.headers, 'signature-input': ` ${input}`, signature: ` ${signature}`, 'content-digest': digest === undefined ? undefined : ` ${digest}` };
      const a = verifyHttpSignature({ ...req, headers }, KEYS, NOW, POLICY);
      const b = verifyHttpSignature({ ...req, headers: spaced }, KEYS, NOW, POLICY);
      assert.deepEqual(a, b, `input ${input}\nsignature ${signature}\ndigest ${digest}`);
      if (parseCanonicalSignatureInput(input) !== undefined) {
        if (a.ok) seen.fastOk++;
        else seen.fastRefused++;
      }
      reasons.add(a.ok ? "ok" : a.reason);
    }), RUNS);
    // The property means something only if the fast path ran, both to acceptances and to refusals.
    assert.ok(seen.fastOk > 20 && seen.fastRefused > 20, JSON.stringify(seen));
    for (const r of ['ok', 'malformed', 'algorithm', 'unknown_key', 'not_covered', 'bad_secret', 'clock_skew', 'digest_mismatch']) assert.ok(reasons.has(r), `no verdict ${r} among ${[...reasons].join(', ')}`);
  });

  it('several field lines (joined with ", ") are left to the generic parser and refused as before', () => {
    const req = baseRequest();
    const input = `sig1=("@method" "@authority" "@path" "@query" "content-digest");created=${NOW_S};keyid="${key.id}"`;
    const right = rightSignature(req, input)!;
    const v = verifyHttpSignature({ ...req, headers: { ...req.headers, 'signature-input': [input, input.replace('sig1', 'sig2')], signature: `sig1=:${right.toString('base64')}:` } }, KEYS, NOW, POLICY);
    assert.equal(v.ok ? 'ok' : v.reason, 'ambiguous');
    const ok = verifyHttpSignature({ ...req, headers: { ...req.headers, 'signature-input': input, signature: `sig1=:${right.toString('base64')}:` } }, KEYS, NOW, POLICY);
    assert.ok(ok.ok, ok.ok ? '' : ok.message);
  });
});
