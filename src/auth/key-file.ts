// The API key file (`apikeys.yaml`, docs/api-credentials.md "The key file"): what `meshward apikey` writes
// and the sidecar reads. Per key id: name, scopes, times, the SHA-256 of the secret (two during a rotation's
// grace), optional boundTo and rate limit, and for HMAC keys the shared secret itself (it must be stored to
// verify signatures, hence mode 0600). Read through the one config-file loader (src/config-file.ts) with a
// strict schema: an unknown key is an error, since a typo in a credential file must not silently change who
// gets in; errors read `FILE: keys.ID.field: sentence`. Otherwise pure: text in, text out.
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigFile, type ConfigProblem } from '../config-file.js';
import { MeshwardError } from '../errors.js';
import { compileSpiffePattern } from '../pki/spiffe.js';
import { KEY_ID_FORMAT } from './api-key.js';

export interface SecretHash {
  sha256: Buffer;
  /** Set on the previous secret during a rotation's grace: accepted until then. */
  until?: Date;
}

export interface HmacSecret {
  /** The 32-byte HMAC-SHA256 key. */
  secret: Buffer;
  until?: Date;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: string[];
  created: Date;
  expires?: Date;
  revoked?: Date;
  /** The current secret's hash first; a second entry (with `until`) during a rotation's grace. */
  secretHashes: SecretHash[];
  /** Present exactly for HMAC keys; same order and grace rule as secretHashes. */
  hmacSecrets?: HmacSecret[];
  /** SPIFFE ID pattern the mTLS peer must match for the key to work. */
  boundTo?: string;
  rps?: number;
  burst?: number;
}

export interface ApiKeyFile {
  keys: ApiKeyRecord[];
}

export const HMAC_SECRET_BYTES = 32;
/** OAuth 2.0 scope-token characters (RFC 6749 §3.3), the same rule the policy applies. */
export const SCOPE_NAME = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const time = z.string({ error: 'must be an RFC 3339 time such as 2025-06-01T10:00:00Z' })
  .regex(TIME, { error: 'must be an RFC 3339 time such as 2025-06-01T10:00:00Z' })
  .refine((s) => !Number.isNaN(Date.parse(s)), { error: 'is not a real date and time' });
const hex256 = z.string({ error: 'must be 64 hex digits (a SHA-256)' }).regex(/^[0-9a-f]{64}$/, { error: 'must be 64 lowercase hex digits (a SHA-256)' });
const hmacKey = z.string({ error: 'must be a base64 HMAC secret' })
  .regex(/^[A-Za-z0-9+/]{43}=$/, { error: `must be ${HMAC_SECRET_BYTES} bytes in base64 (44 characters)` });

const recordShape = z.strictObject({
  name: z.string({ error: 'must be a name' }).min(1, { error: 'must not be empty' }),
  scopes: z.array(z.string({ error: 'must be a scope name' }).regex(SCOPE_NAME, { error: 'is not a scope name (printable ASCII without spaces, quotes or backslashes)' }), { error: 'must be a list of scopes' })
    .min(1, { error: 'must list at least one scope' }),
  created: time,
  expires: time.optional(),
  revoked: time.optional(),
  secretHashes: z.array(z.strictObject({ sha256: hex256, until: time.optional() }), { error: 'must be a list of {sha256, until}' })
    .min(1, { error: 'must hold the hash of the current secret' }).max(2, { error: 'holds at most two hashes (the current one and, during a rotation, the previous one)' }),
  hmacSecrets: z.array(z.strictObject({ secret: hmacKey, until: time.optional() }), { error: 'must be a list of {secret, until}' })
    .min(1, { error: 'must hold the current HMAC secret' }).max(2, { error: 'holds at most two secrets (the current one and, during a rotation, the previous one)' }).optional(),
  boundTo: z.string({ error: 'must be a SPIFFE ID pattern' }).optional(),
  rps: z.number({ error: 'must be a number' }).positive({ error: 'must be greater than 0' }).optional(),
  burst: z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).optional(),
});
type RawRecord = z.infer<typeof recordShape>;

/** The rules across fields of one record, as problems at their field (relative to the record). */
function recordProblems(r: RawRecord): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (new Set(r.scopes).size !== r.scopes.length) problems.push({ path: ['scopes'], message: 'a scope is listed twice' });
  for (const field of ['secretHashes', 'hmacSecrets'] as const) {
    const list = r[field];
    if (list === undefined) continue;
    if (list[0]!.until !== undefined) problems.push({ path: [field, 0], message: 'the current entry has no "until" (only the previous one, during a rotation\'s grace)' });
    if (list.length === 2 && list[1]!.until === undefined) problems.push({ path: [field, 1], message: 'the previous entry needs "until" (the end of the rotation\'s grace)' });
  }
  if (r.hmacSecrets !== undefined && r.hmacSecrets.length !== r.secretHashes.length) {
    problems.push({ path: ['hmacSecrets'], message: 'a rotation replaces the key and the HMAC secret together, so both lists have the same length' });
  }
  if (r.burst !== undefined && r.rps === undefined) problems.push({ path: ['burst'], message: 'needs rps too' });
  if (r.boundTo !== undefined) {
    try {
      compileSpiffePattern(r.boundTo);
    } catch (err) {
      problems.push({ path: ['boundTo'], message: (err as Error).message });
    }
  }
  return problems;
}

function toRecord(id: string, r: RawRecord): ApiKeyRecord {
  const record: ApiKeyRecord = {
    id,
    name: r.name,
    scopes: r.scopes,
    created: new Date(r.created),
    secretHashes: r.secretHashes.map((h) => (h.until === undefined ? { sha256: Buffer.from(h.sha256, 'hex') } : { sha256: Buffer.from(h.sha256, 'hex'), until: new Date(h.until) })),
  };
  if (r.expires !== undefined) record.expires = new Date(r.expires);
  if (r.revoked !== undefined) record.revoked = new Date(r.revoked);
  if (r.hmacSecrets !== undefined) {
    record.hmacSecrets = r.hmacSecrets.map((h) => (h.until === undefined ? { secret: Buffer.from(h.secret, 'base64') } : { secret: Buffer.from(h.secret, 'base64'), until: new Date(h.until) }));
  }
  if (r.boundTo !== undefined) record.boundTo = r.boundTo;
  if (r.rps !== undefined) {
    record.rps = r.rps;
    record.burst = r.burst ?? Math.max(1, Math.ceil(r.rps));
  }
  return record;
}

/**
 * The whole file. An empty file (or one without `keys`) holds no keys: `apikey create` starts from one, and
 * a sidecar may be given an empty file before any key exists. Ids are checked by zod's record key; a
 * "__proto__" id, which zod's record would silently drop, is refused by the loader for every config file.
 */
export const apiKeyFileSchema = z.strictObject({
  version: z.literal(1, { error: 'must be 1 (this meshward knows key file version 1)' }).optional(),
  keys: z.record(z.string().regex(KEY_ID_FORMAT), recordShape, {
    error: (issue) => (issue.code === 'invalid_key' ? 'is not a key id (12 base62 characters)' : 'must be a mapping of key id to key'),
  }).optional(),
}).superRefine((f, ctx) => {
  if (ctx.issues.length > 0) return;
  if (f.keys !== undefined && f.version === undefined) ctx.addIssue({ code: 'custom', path: ['version'], message: 'is required (version: 1)' });
  for (const [id, r] of Object.entries(f.keys ?? {})) {
    for (const p of recordProblems(r)) ctx.addIssue({ code: 'custom', path: ['keys', id, ...p.path], message: p.message });
  }
}).transform((f): ApiKeyFile => ({ keys: Object.entries(f.keys ?? {}).map(([id, r]) => toRecord(id, r)) }));

/** The key file as the sidecar and `policy check` read it: `API_KEY_FILE.load(path)` (errors are invalid_argument). */
export const API_KEY_FILE = new ConfigFile(apiKeyFileSchema, { what: 'the API key file' });

/** Parses and validates a key file's text; `source` names it in errors. An empty file holds no keys. */
export function parseApiKeyFile(text: string, source: string): ApiKeyFile {
  return API_KEY_FILE.parse(text, source);
}

const HEADER = [
  ' meshward API keys, written by `meshward apikey` (docs/api-credentials.md).',
  ' It holds SHA-256 hashes of key secrets and, for HMAC keys, the HMAC secrets themselves: keep it mode 0600.',
].join('\n');

/** The file's text; parseApiKeyFile(formatApiKeyFile(f)) gives f back. */
export function formatApiKeyFile(file: ApiKeyFile): string {
  const keys: Record<string, unknown> = {};
  for (const k of file.keys) {
    const out: Record<string, unknown> = { name: k.name, scopes: k.scopes, created: k.created.toISOString() };
    if (k.expires !== undefined) out.expires = k.expires.toISOString();
    if (k.revoked !== undefined) out.revoked = k.revoked.toISOString();
    out.secretHashes = k.secretHashes.map((h) => (h.until === undefined ? { sha256: h.sha256.toString('hex') } : { sha256: h.sha256.toString('hex'), until: h.until.toISOString() }));
    if (k.hmacSecrets !== undefined) {
      out.hmacSecrets = k.hmacSecrets.map((h) => (h.until === undefined ? { secret: h.secret.toString('base64') } : { secret: h.secret.toString('base64'), until: h.until.toISOString() }));
    }
    if (k.boundTo !== undefined) out.boundTo = k.boundTo;
    if (k.rps !== undefined) {
      out.rps = k.rps;
      out.burst = k.burst;
    }
    keys[k.id] = out;
  }
  const doc = new YAML.Document({ version: 1, keys });
  doc.commentBefore = HEADER;
  return doc.toString({ lineWidth: 0 });
}

/** Where a key stands at `now`, for `apikey list` and refusals. */
export function keyStatus(k: ApiKeyRecord, now: Date): 'active' | 'revoked' | 'expired' | 'rotating' {
  if (k.revoked !== undefined) return 'revoked';
  if (k.expires !== undefined && now.getTime() >= k.expires.getTime()) return 'expired';
  if (k.secretHashes.some((h) => h.until !== undefined && h.until.getTime() > now.getTime())) return 'rotating';
  return 'active';
}

function findKey(file: ApiKeyFile, id: string): ApiKeyRecord {
  const k = file.keys.find((r) => r.id === id);
  if (k === undefined) throw new MeshwardError('not_found', `no API key with id ${id} in the key file (meshward apikey list shows the ids)`);
  return k;
}

/** The file with `record` added; the id must be new. */
export function addKey(file: ApiKeyFile, record: ApiKeyRecord): ApiKeyFile {
  if (file.keys.some((r) => r.id === record.id)) throw new MeshwardError('already_exists', `the key file already has a key with id ${record.id}`);
  return { keys: [...file.keys, record] };
}

/** The file with key `id` revoked at `now` (from then on every use is refused). */
export function revokeKey(file: ApiKeyFile, id: string, now: Date): ApiKeyFile {
  const k = findKey(file, id);
  if (k.revoked !== undefined) throw new MeshwardError('failed_precondition', `API key ${id} (${k.name}) is already revoked since ${k.revoked.toISOString()}`);
  return { keys: file.keys.map((r) => (r === k ? { ...r, revoked: now } : r)) };
}

/**
 * The file with key `id` given a new secret (and a new HMAC secret for HMAC keys): the previous one stays
 * accepted until now + graceMs (none when 0). An older previous secret from an earlier rotation is dropped.
 */
export function rotateKey(file: ApiKeyFile, id: string, next: { sha256: Buffer; hmacSecret?: Buffer }, now: Date, graceMs: number): ApiKeyFile {
  const k = findKey(file, id);
  if (k.revoked !== undefined) throw new MeshwardError('failed_precondition', `API key ${id} (${k.name}) is revoked: create a new key instead`);
  if (k.expires !== undefined && k.expires.getTime() <= now.getTime()) {
    throw new MeshwardError('failed_precondition', `API key ${id} (${k.name}) expired at ${k.expires.toISOString()}: create a new key instead`);
  }
  const until = new Date(now.getTime() + graceMs);
  const keepOld = graceMs > 0;
  const secretHashes: SecretHash[] = [{ sha256: next.sha256 }];
  if (keepOld) secretHashes.push({ sha256: k.secretHashes[0]!.sha256, until });
  const rotated: ApiKeyRecord = { ...k, secretHashes };
  if (k.hmacSecrets !== undefined) {
    if (next.hmacSecret === undefined) throw new MeshwardError('internal', `rotating HMAC key ${id} needs a new HMAC secret`);
    rotated.hmacSecrets = [{ secret: next.hmacSecret }];
    if (keepOld) rotated.hmacSecrets.push({ secret: k.hmacSecrets[0]!.secret, until });
  }
  return { keys: file.keys.map((r) => (r === k ? rotated : r)) };
}
