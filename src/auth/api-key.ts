// meshward API keys (docs/api-credentials.md, "The key format"): `mwk_` + 12-character base62 id + `_` +
// 32-character base62 secret + 6-character base62 CRC32 of everything before it. The checksum lets a
// secret scanner find keys without false positives and lets the sidecar refuse a typo before any lookup.
// This file holds the format (generate, parse, find in text) and the per-request check of a key sent in
// `authorization: Bearer`, `x-api-key` or as the Basic username with an empty password.
import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { headerValues, refuse, SEVERAL_AUTHORIZATION, type AuthRequest, type AuthVerdict, type Peer, type Refused } from './verdict.js';

/** What checkApiKey asks of a key set: ApiKeySet (key-set.ts, which builds on this module's parser). */
export interface ApiKeyVerifier {
  verifyKey(text: string, now: number, peer: Peer | undefined): AuthVerdict;
}

export const API_KEY_PREFIX = 'mwk_';
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const KEY_ID_LENGTH = 12;
export const SECRET_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;
/** 4 + 12 + 1 + 32 + 6. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH;

const KEY_FORMAT = /^mwk_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
/** A key anywhere in a text: not glued to other base62 characters on either side. */
const KEY_IN_TEXT = /(?<![0-9A-Za-z])mwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}(?![0-9A-Za-z])/g;
/** Anything shaped like a key, checksum or not (a mistyped key in a URL has leaked all the same). */
const KEY_SHAPE = /mwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}/;
export const KEY_ID_FORMAT = /^[0-9A-Za-z]{12}$/;

export interface ApiKeyParts {
  id: string;
  secret: string;
}

/** A random source: n bytes (node:crypto's randomBytes unless a test passes its own). */
export type RandomBytes = (n: number) => Buffer;

/** The 6-character base62 CRC32 of `text`, most significant digit first, zero-padded (62^6 > 2^32). */
export function checksum62(text: string): string {
  let n = crc32(text);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** `length` uniform base62 characters: bytes ≥ 248 (= 4·62) are drawn again so no character is favoured. */
export function randomBase62(length: number, random: RandomBytes = randomBytes): string {
  let out = '';
  while (out.length < length) {
    for (const b of random(length * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** The full key text for an id and a secret. */
export function formatApiKey(id: string, secret: string): string {
  const body = `${API_KEY_PREFIX}${id}_${secret}`;
  return body + checksum62(body);
}

/** A new random key: 71 bits of id, 190 bits of secret. */
export function generateApiKey(random: RandomBytes = randomBytes): ApiKeyParts & { key: string } {
  const id = randomBase62(KEY_ID_LENGTH, random);
  const secret = randomBase62(SECRET_LENGTH, random);
  return { id, secret, key: formatApiKey(id, secret) };
}

/** A new key with the given id (rotation keeps the id). */
export function generateSecretFor(id: string, random: RandomBytes = randomBytes): ApiKeyParts & { key: string } {
  const secret = randomBase62(SECRET_LENGTH, random);
  return { id, secret, key: formatApiKey(id, secret) };
}

export type ParsedKey = { ok: true; id: string; secret: string } | { ok: false; reason: 'malformed' | 'checksum'; message: string };

/** Checks the format and the checksum; nothing is looked up. Never puts the text into a message. */
export function parseApiKey(text: string): ParsedKey {
  const m = KEY_FORMAT.exec(text);
  if (m === null) {
    const message = text.startsWith(API_KEY_PREFIX) && text.length !== API_KEY_LENGTH
      ? `the API key has ${text.length} characters where a meshward key has ${API_KEY_LENGTH}: it was cut short or has extra characters`
      : `the API key is not a meshward key (mwk_ + 12-character id + _ + 38 base62 characters)`;
    return { ok: false, reason: 'malformed', message };
  }
  if (checksum62(text.slice(0, -CHECKSUM_LENGTH)) !== m[3]) {
    return { ok: false, reason: 'checksum', message: `the API key's checksum does not match: it was mistyped or copied incompletely (key id ${m[1]})` };
  }
  return { ok: true, id: m[1]!, secret: m[2]! };
}

/**
 * SHA-256 of a key's secret part: what the key file stores (the secret has 190 random bits, so no salt and no
 * slow hash). crypto.hash, the one-shot form, costs 1.7 µs here against 2.4 µs for createHash().update().digest().
 */
export function hashSecret(secret: string): Buffer {
  return hash('sha256', secret, 'buffer');
}

export interface FoundKey {
  /** Character offset of the key in the text. */
  index: number;
  id: string;
}

/** Every checksum-valid key in `text` (look-alikes whose checksum fails are not keys). */
export function findApiKeys(text: string): FoundKey[] {
  const found: FoundKey[] = [];
  if (!text.includes(API_KEY_PREFIX)) return found;
  for (const m of text.matchAll(KEY_IN_TEXT)) {
    const parsed = parseApiKey(m[0]);
    if (parsed.ok) found.push({ index: m.index, id: parsed.id });
  }
  return found;
}

/** True when the raw query holds something shaped like a key, percent-encoded or not. */
export function queryHoldsApiKey(query: string): boolean {
  if (!/mwk(_|%5f)/i.test(query)) return false;
  let decoded = query;
  try {
    decoded = decodeURIComponent(query.replace(/\+/g, ' '));
  } catch {
    // A malformed escape elsewhere in the query: look at the raw text only.
  }
  return KEY_SHAPE.test(decoded) || KEY_SHAPE.test(query);
}

type Candidate = { key: string } | Refused;

function fromAuthorization(line: string): Candidate | undefined {
  const space = line.indexOf(' ');
  const scheme = (space < 0 ? line : line.slice(0, space)).toLowerCase();
  const credentials = space < 0 ? '' : line.slice(space + 1).trim();
  if (scheme === 'bearer') return credentials.startsWith(API_KEY_PREFIX) ? { key: credentials } : undefined;
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  if (!user.startsWith(API_KEY_PREFIX)) {
    return refuse('apikey', 'basic_password', 'HTTP Basic credentials are accepted only as an API key username with an empty password (curl -u mwk_...:): no static passwords');
  }
  if (colon < 0 || decoded.length > colon + 1) {
    return refuse('apikey', 'basic_password', 'HTTP Basic with an API key needs an empty password (curl -u mwk_...:): anything after the colon is refused');
  }
  return { key: user };
}

/**
 * The API key check for one request: the key must come in exactly one place (Bearer, x-api-key or Basic
 * username), never in the query string, be well-formed with a valid checksum, and pass the key set's
 * lookup (secret, revocation, expiry, boundTo). Cost: a few header reads, a CRC32, one SHA-256.
 */
export function checkApiKey(req: AuthRequest, keys: ApiKeyVerifier, now: number): AuthVerdict {
  if (req.query !== undefined && queryHoldsApiKey(req.query)) {
    return refuse('apikey', 'in_query', 'an API key in the URL query string is refused (URLs end up in logs): send it as authorization: Bearer or x-api-key, and replace the key');
  }
  const authorization = headerValues(req.headers, 'authorization');
  if (authorization.length > 1) return refuse('apikey', 'ambiguous', SEVERAL_AUTHORIZATION);
  const found: Candidate[] = [];
  for (const line of authorization) {
    const c = fromAuthorization(line.trim());
    if (c !== undefined) found.push(c);
  }
  for (const line of headerValues(req.headers, 'x-api-key')) found.push({ key: line.trim() });
  if (found.length === 0) return refuse('apikey', 'missing', 'no API key: send authorization: Bearer mwk_... or x-api-key: mwk_...');
  if (found.length > 1) return refuse('apikey', 'ambiguous', 'several API keys in one request: send exactly one');
  const only = found[0]!;
  if ('ok' in only) return only;
  return keys.verifyKey(only.key, now, req.peer);
}
