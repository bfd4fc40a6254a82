// RFC 9421 HTTP Message Signatures with `alg="hmac-sha256"` and `keyid` = an API key id
// (docs/api-credentials.md, "HMAC signing"): parse Signature-Input/Signature, rebuild the signature base
// from the request, verify in constant time, then the policy: `@method`, `@authority`, `@path`, `@query`
// (when there is a query) and `content-digest` (when there is a body) must be covered, `created` within
// ±maxSkew, `expires` honoured, and RFC 9530 Content-Digest equal to the body's SHA-256. The verdict carries a
// replay key for the sidecar's replay cache (replay-cache.ts), which every worker shares.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { KEY_ID_FORMAT } from './api-key.js';
import type { ApiKeySet } from './key-set.js';
import { statusRefusal } from './key-set.js';
import { hmacSha256Into } from './hmac-sha256.js';
import { base64Length, canonicalByteSequence, flatParams, parseCanonicalSignatureInput, type FlatParams } from './signature-fields.js';
import { parseDictionary, serializeInnerList, StructuredFieldError, type BareItem, type Dictionary, type InnerList } from './structured-fields.js';
import { headerValues, refuse, SEVERAL_AUTHORIZATION, type AuthRequest, type AuthVerdict, type RefusalReason } from './verdict.js';

export const HMAC_ALGORITHM = 'hmac-sha256';
export const DEFAULT_MAX_SKEW_MS = 300_000;

export interface HmacPolicy {
  /** How far `created` may be from the sidecar's clock, either way. */
  maxSkewMs: number;
}

/** Derived components this verifier knows (RFC 9421 §2.2); `@status` is for responses only. */
const DERIVED = new Set(['@method', '@authority', '@scheme', '@target-uri', '@request-target', '@path', '@query']);
/** Signature parameters (RFC 9421 §2.3, the IANA registry); anything else is refused. */
const PARAMS = new Set(['created', 'expires', 'nonce', 'alg', 'keyid', 'tag']);
/** Bounds on the work one request can ask for. */
const MAX_FIELD_LENGTH = 8192;
const MAX_COMPONENTS = 32;
const EMPTY_SHA256 = createHash('sha256').digest();
/** Characters of a field name (RFC 9110 tchar) without uppercase: covered header names must be lowercase. */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;
/**
 * Scratch space for decoded 32-byte byte sequences (the signature, the Content-Digest) on the fast path.
 * verifyHttpSignature is synchronous and never re-entered, so one of each serves every request.
 */
const SIGNATURE_BYTES = Buffer.alloc(32);
const DIGEST_BYTES = Buffer.alloc(32);
const MAC = Buffer.alloc(32);

class SignatureProblem extends Error {
  constructor(readonly reason: RefusalReason, message: string) {
    super(message);
  }
}

/** Host as RFC 9421 §2.2.3 wants it: lowercase, without the scheme's default port. */
function normalizeAuthority(authority: string, scheme: string): string {
  const a = authority.toLowerCase();
  if (scheme === 'https' && a.endsWith(':443')) return a.slice(0, -4);
  if (scheme === 'http' && a.endsWith(':80')) return a.slice(0, -3);
  return a;
}

function componentValue(req: AuthRequest, name: string): string {
  // Each case computes only what it needs: @method, @authority and @path are nearly every signature, and
  // lower-casing the scheme or building the query string for them was work (and garbage) per request.
  switch (name) {
    case '@method':
      return req.method;
    case '@scheme':
      return req.scheme.toLowerCase();
    case '@authority':
      return normalizeAuthority(req.authority, req.scheme.toLowerCase());
    case '@path':
      return req.path === '' ? '/' : req.path;
    case '@query':
      // §2.2.7: without a query the value is "?" alone.
      return req.query === undefined || req.query === '' ? '?' : `?${req.query}`;
    case '@request-target':
      return (req.path === '' ? '/' : req.path) + (req.query === undefined ? '' : `?${req.query}`);
    case '@target-uri': {
      const scheme = req.scheme.toLowerCase();
      return `${scheme}://${normalizeAuthority(req.authority, scheme)}${req.path === '' ? '/' : req.path}${req.query === undefined ? '' : `?${req.query}`}`;
    }
    default: {
      // §2.1: every field line trimmed, joined with ", ". One line as a string (nearly always): no array.
      const one = req.headers[name];
      if (typeof one === 'string') return one.trim();
      const lines = headerValues(req.headers, name);
      if (lines.length === 0) throw new SignatureProblem('malformed', `the signature covers "${name}", which the request does not have`);
      // One line (nearly always): no array of trimmed lines to join.
      return lines.length === 1 ? lines[0]!.trim() : lines.map((l) => l.trim()).join(', ');
    }
  }
}

/** The covered component names of a Signature-Input inner list, checked. */
function componentNames(list: InnerList): string[] {
  if (list.items.length > MAX_COMPONENTS) throw tooManyComponents();
  const names: string[] = [];
  for (const item of list.items) {
    if (item.value.type !== 'string') throw new SignatureProblem('malformed', 'Signature-Input: every covered component must be a quoted string');
    const name = item.value.value;
    if (item.params.length > 0) {
      throw new SignatureProblem('malformed', `Signature-Input: component parameters (${item.params.map(([k]) => `;${k}`).join('')} on "${name}") are not supported: cover the plain component`);
    }
    checkName(name, names.includes(name));
    names.push(name);
  }
  return names;
}

/** The same checks as componentNames, for names the fast path read (plain strings without parameters). */
function checkedNames(names: string[]): string[] {
  if (names.length > MAX_COMPONENTS) throw tooManyComponents();
  for (let i = 0; i < names.length; i++) checkName(names[i]!, names.indexOf(names[i]!) < i);
  return names;
}

function tooManyComponents(): SignatureProblem {
  return new SignatureProblem('malformed', `the signature covers more than ${MAX_COMPONENTS} components`);
}

/** `name` is a component this verifier knows, and not one covered before it (`repeated`). */
function checkName(name: string, repeated: boolean): void {
  if (name.startsWith('@') ? !DERIVED.has(name) : !isFieldName(name)) {
    throw new SignatureProblem('malformed', `Signature-Input: "${name}" is not a component this verifier knows (lowercase header names and ${[...DERIVED].join(', ')})`);
  }
  if (repeated) throw new SignatureProblem('malformed', `Signature-Input: "${name}" is covered twice`);
}

/** A non-empty lowercase field name (a code table, not a regular expression per request). */
function isFieldName(name: string): boolean {
  if (name === '') return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!(c < 128 && NAME_CHAR[c] === 1)) return false;
  }
  return true;
}

/**
 * The signature base (RFC 9421 §2.5) of `req` for the covered components and parameters in `list`:
 * one line per component, then `"@signature-params"` with the serialized list. Deterministic.
 */
export function signatureBase(req: AuthRequest, list: InnerList): string {
  return buildBase(req, componentNames(list), serializeInnerList(list));
}

/** `serialized`: the inner list's RFC 8941 serialization (the `@signature-params` value). */
function buildBase(req: AuthRequest, names: readonly string[], serialized: string): string {
  let base = '';
  for (const name of names) base += `"${name}": ${lineValue(req, name)}\n`;
  return `${base}"@signature-params": ${serialized}`;
}

/** A component's value, refused when it holds a line break (it would forge another line of the base). */
function lineValue(req: AuthRequest, name: string): string {
  const value = componentValue(req, name);
  if (value.includes('\n') || value.includes('\r')) throw new SignatureProblem('malformed', `the value of "${name}" holds a line break`);
  return value;
}

interface SignatureParams {
  keyId: string;
  created: number;
  expires?: number;
}

function signatureParams(p: FlatParams): SignatureParams {
  // One pass over the parameters finds each by its name (the first of a repeated one, as indexOf would), without
  // a closure and an indexOf per name per request; the checks then run in the order they always did.
  let alg = -1;
  let keyId = -1;
  let created = -1;
  let expires = -1;
  for (let i = 0; i < p.keys.length; i++) {
    const key = p.keys[i]!;
    switch (key) {
      case 'alg':
        if (alg < 0) alg = i;
        break;
      case 'keyid':
        if (keyId < 0) keyId = i;
        break;
      case 'created':
        if (created < 0) created = i;
        break;
      case 'expires':
        if (expires < 0) expires = i;
        break;
      case 'nonce':
      case 'tag':
        break;
      default:
        throw new SignatureProblem('malformed', `Signature-Input: unknown parameter "${key}" (known: ${[...PARAMS].join(', ')})`);
    }
  }
  if (alg >= 0 && !(p.types[alg] === 'string' && p.values[alg] === HMAC_ALGORITHM)) {
    throw new SignatureProblem('algorithm', `Signature-Input: alg must be "${HMAC_ALGORITHM}"`);
  }
  if (keyId < 0 || p.types[keyId] !== 'string') throw new SignatureProblem('malformed', 'Signature-Input: keyid="<API key id>" is required');
  if (created < 0 || p.types[created] !== 'integer') throw new SignatureProblem('malformed', 'Signature-Input: created=<unix seconds> is required');
  if (expires >= 0 && p.types[expires] !== 'integer') throw new SignatureProblem('malformed', 'Signature-Input: expires must be unix seconds');
  // nonce before tag, the first of each, as before.
  const nonce = p.keys.indexOf('nonce');
  if (nonce >= 0 && p.types[nonce] !== 'string') throw new SignatureProblem('malformed', 'Signature-Input: nonce must be a string');
  const tag = p.keys.indexOf('tag');
  if (tag >= 0 && p.types[tag] !== 'string') throw new SignatureProblem('malformed', 'Signature-Input: tag must be a string');
  const params: SignatureParams = { keyId: p.values[keyId] as string, created: p.values[created] as number };
  if (expires >= 0) params.expires = p.values[expires] as number;
  return params;
}

function joinedField(req: AuthRequest, name: string): string | undefined {
  const one = req.headers[name];
  // One line as a string (credentialHeaders hands them so): no array to join.
  const text = typeof one === 'string' ? one : one === undefined || one.length === 0 ? undefined : one.join(', ');
  if (text === undefined) return undefined;
  if (text.length > MAX_FIELD_LENGTH) throw new SignatureProblem('malformed', `${name} is longer than ${MAX_FIELD_LENGTH} characters`);
  return text;
}

/** A dictionary field, or the refusal (with `reason`) saying which field is malformed and where. */
function dictionaryField(text: string, field: string, reason: RefusalReason): Dictionary {
  try {
    return parseDictionary(text);
  } catch (err) {
    if (err instanceof StructuredFieldError) throw new SignatureProblem(reason, `${field} is not a valid structured field: ${err.message}`);
    throw err;
  }
}

/** The one signature of the request, from either parser. */
interface TheSignature {
  params: FlatParams;
  /** The generic parser's inner list (its names are checked after the key lookup), or the fast path's names. */
  list?: InnerList;
  names?: string[];
  /** The `@signature-params` value: the fast path's slice of the field; serializeInnerList(list) otherwise. */
  serialized?: string;
  /** The signature's bytes and their base64 (the replay key). */
  bytes: Buffer;
  base64: string;
}

/**
 * The one signature of the request: Signature-Input and Signature in the common canonical shape
 * (signature-fields.ts) without the generic parser's objects; anything else by parseDictionary, with the
 * same verdicts (test/auth/signature-fields-match-the-generic-parser.test.ts).
 */
function theSignature(input: string, signature: string): TheSignature {
  const fast = parseCanonicalSignatureInput(input);
  if (fast !== undefined) {
    const base64 = canonicalByteSequence(signature, fast.label);
    if (base64 !== undefined) {
      // A 32-byte value goes to the scratch buffer; any other length never matches (bad_secret) either way.
      const bytes = base64Length(base64) === 32 ? (SIGNATURE_BYTES.write(base64, 'base64'), SIGNATURE_BYTES) : Buffer.from(base64, 'base64');
      return { params: fast.params, names: fast.names, serialized: fast.serialized, bytes, base64 };
    }
  }
  const inputs = dictionaryField(input, 'Signature-Input', 'malformed');
  const signatures = dictionaryField(signature, 'Signature', 'malformed');
  if (inputs.size !== 1 || signatures.size !== 1) {
    throw new SignatureProblem(inputs.size === 0 || signatures.size === 0 ? 'malformed' : 'ambiguous',
      `Signature-Input and Signature must each hold exactly one signature (found ${inputs.size} and ${signatures.size})`);
  }
  const [label, list] = [...inputs][0]!;
  const sig = signatures.get(label);
  if (sig === undefined) throw new SignatureProblem('malformed', `Signature has no "${label}" to match Signature-Input`);
  if (list.kind !== 'innerList') throw new SignatureProblem('malformed', `Signature-Input: ${label} must be an inner list of components`);
  if (sig.kind !== 'item' || sig.value.type !== 'bytes') throw new SignatureProblem('malformed', `Signature: ${label} must be a byte sequence (:base64:)`);
  return { params: flatParams(list.params), list, bytes: sig.value.value, base64: sig.value.value.toString('base64') };
}

function checkCoverage(req: AuthRequest, names: readonly string[]): void {
  // What must be covered, and which components cover it: the method by @method; the authority by @authority
  // or @target-uri; the path by @path, @target-uri or @request-target; the query by @query, @target-uri or
  // @request-target; the body by content-digest. One pass over the names, no closure or includes() per request.
  let method = false;
  let authority = false;
  let path = false;
  let query = false;
  let body = false;
  for (let i = 0; i < names.length; i++) {
    switch (names[i]) {
      case '@method':
        method = true;
        break;
      case '@authority':
        authority = true;
        break;
      case '@path':
        path = true;
        break;
      case '@query':
        query = true;
        break;
      case 'content-digest':
        body = true;
        break;
      case '@target-uri':
        authority = path = query = true;
        break;
      case '@request-target':
        path = query = true;
        break;
    }
  }
  const hasQuery = req.query !== undefined && req.query !== '';
  const hasBody = req.body !== undefined;
  if (method && authority && path && (!hasQuery || query) && (!hasBody || body)) return;
  const missing: string[] = [];
  if (!method) missing.push('@method');
  if (!authority) missing.push('@authority');
  if (!path) missing.push('@path');
  if (hasQuery && !query) missing.push('@query');
  if (hasBody && !body) missing.push('content-digest');
  throw new SignatureProblem('not_covered', `the signature must cover ${missing.join(', ')}`);
}

const DIGEST_NOT_32_BYTES = 'Content-Digest: sha-256 must be a 32-byte byte sequence (:base64:)';
const DIGEST_DIFFERS = 'Content-Digest does not match the body: the body was changed or the digest is wrong';

/** RFC 9530: the sha-256 member of Content-Digest must equal the body's SHA-256 (of nothing, for no body). */
function checkContentDigest(req: AuthRequest): void {
  const field = joinedField(req, 'content-digest');
  if (field === undefined) return;
  const expected = req.body?.sha256 ?? EMPTY_SHA256;
  // The common shape, `sha-256=:base64:` alone, without the generic parser; anything else goes through it.
  const fast = canonicalByteSequence(field, 'sha-256');
  if (fast !== undefined) {
    if (base64Length(fast) !== 32) throw new SignatureProblem('digest_mismatch', DIGEST_NOT_32_BYTES);
    DIGEST_BYTES.write(fast, 'base64');
    if (!DIGEST_BYTES.equals(expected)) throw new SignatureProblem('digest_mismatch', DIGEST_DIFFERS);
    return;
  }
  const member = dictionaryField(field, 'Content-Digest', 'digest_mismatch').get('sha-256');
  if (member === undefined) throw new SignatureProblem('digest_mismatch', 'Content-Digest has no sha-256 member (the only algorithm checked)');
  if (member.kind !== 'item' || member.value.type !== 'bytes' || member.value.value.length !== 32) {
    throw new SignatureProblem('digest_mismatch', DIGEST_NOT_32_BYTES);
  }
  if (!member.value.value.equals(expected)) throw new SignatureProblem('digest_mismatch', DIGEST_DIFFERS);
}

function hmac(secret: Buffer, base: string): Buffer {
  return createHmac('sha256', secret).update(base).digest();
}

/**
 * Verifies the request's HMAC signature against the key set at `now` (ms). On success the verdict's
 * `replayKey` must be checked against the replay cache before the request goes on.
 */
export function verifyHttpSignature(req: AuthRequest, keys: ApiKeySet, now: number, policy: HmacPolicy): AuthVerdict {
  let keyId: string | undefined;
  // Authorization holds one credential: with two lines it is unclear which one the app would act on, and
  // node's HTTP/2 header object would fold them into the first before forwarding (docs/api-credentials.md).
  const authorization = req.headers['authorization'];
  if (authorization !== undefined && typeof authorization !== 'string' && authorization.length > 1) return refuse('hmac', 'ambiguous', SEVERAL_AUTHORIZATION);
  try {
    const input = joinedField(req, 'signature-input');
    const signature = joinedField(req, 'signature');
    if (input === undefined && signature === undefined) {
      return refuse('hmac', 'missing', 'no HTTP message signature: sign the request (Signature-Input and Signature headers)');
    }
    if (input === undefined || signature === undefined) throw new SignatureProblem('malformed', 'Signature-Input and Signature must be sent together');
    const sig = theSignature(input, signature);
    const { bytes } = sig;
    const params = signatureParams(sig.params);
    // Only a well-formed id goes into the verdict (audit lines): a keyid is whatever the sender wrote.
    if (KEY_ID_FORMAT.test(params.keyId)) keyId = params.keyId;
    const entry = keys.get(params.keyId);
    if (entry === undefined || entry.hmacSecrets.length === 0) {
      throw new SignatureProblem('unknown_key', entry === undefined ? 'the signature\'s keyid names no key' : `key ${params.keyId} is not an HMAC key (create it with --hmac)`);
    }
    const names = sig.list !== undefined ? componentNames(sig.list) : checkedNames(sig.names!);
    checkCoverage(req, names);
    const base = buildBase(req, names, sig.serialized ?? serializeInnerList(sig.list!));
    let matched: 'current' | 'grace' | 'after' | undefined;
    if (bytes.length === 32) {
      for (const s of entry.hmacSecrets) {
        if (!timingSafeEqual(hmacSha256Into(s.value, base, MAC), bytes)) continue;
        const kind = s.until === undefined ? 'current' : now < s.until ? 'grace' : 'after';
        if (matched === undefined || matched === 'after') matched = kind;
      }
    }
    if (matched === undefined) throw new SignatureProblem('bad_secret', 'the signature does not match the request (wrong secret, or the request differs from what was signed)');
    if (matched === 'after') throw new SignatureProblem('rotated', 'the signature was made with a rotated HMAC secret whose grace period ended: use the new secret');
    const nowS = now / 1000;
    const skewS = policy.maxSkewMs / 1000;
    if (Math.abs(nowS - params.created) > skewS) {
      throw new SignatureProblem('clock_skew', `created=${params.created} is more than ${skewS}s from the sidecar's clock (${Math.floor(nowS)}): sign with the current time`);
    }
    if (params.expires !== undefined && nowS >= params.expires) throw new SignatureProblem('expired', `the signature expired (expires=${params.expires})`);
    checkContentDigest(req);
    const status = statusRefusal(entry, 'hmac', now, req.peer);
    if (status !== undefined) return status;
    return { ...entry.accepted.hmac, replayKey: `${entry.id}:${sig.base64}`, replayCreated: params.created };
  } catch (err) {
    if (err instanceof SignatureProblem) return refuse('hmac', err.reason, err.message, keyId);
    throw err;
  }
}

/** The refusal for a signature the replay cache has seen (or cannot hold). */
export function replayRefusal(keyId: string, outcome: 'replay' | 'full'): AuthVerdict {
  return outcome === 'replay'
    ? refuse('hmac', 'replay', 'this signature was already used: sign every request afresh', keyId)
    : refuse('hmac', 'replay_cache_full', 'too many signed requests to remember right now: retry shortly', keyId);
}

/** `Content-Digest` for a body (RFC 9530, sha-256). */
export function contentDigest(body: Buffer | string): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

export interface SignOptions {
  keyId: string;
  secret: Buffer;
  /** Unix seconds. */
  created: number;
  expires?: number;
  nonce?: string;
  label?: string;
  /** Default: @method @authority @path, @query when there is one, content-digest when there is a body. */
  components?: string[];
}

/**
 * Signs a request the way this verifier checks it (for benchmarks and tooling written in TypeScript; the
 * tests check the verifier against an independent Python signer). Returns the two header values.
 */
export function signRequest(req: AuthRequest, o: SignOptions): { 'signature-input': string; signature: string } {
  const names = o.components ?? ['@method', '@authority', '@path', ...(req.query ? ['@query'] : []), ...(req.body ? ['content-digest'] : [])];
  const params: [string, BareItem][] = [['created', { type: 'integer', value: o.created }]];
  if (o.expires !== undefined) params.push(['expires', { type: 'integer', value: o.expires }]);
  if (o.nonce !== undefined) params.push(['nonce', { type: 'string', value: o.nonce }]);
  params.push(['keyid', { type: 'string', value: o.keyId }], ['alg', { type: 'string', value: HMAC_ALGORITHM }]);
  const list: InnerList = { kind: 'innerList', items: names.map((n) => ({ kind: 'item', value: { type: 'string', value: n }, params: [] })), params };
  const label = o.label ?? 'sig1';
  return {
    'signature-input': `${label}=${serializeInnerList(list)}`,
    signature: `${label}=:${hmac(o.secret, signatureBase(req, list)).toString('base64')}:`,
  };
}
