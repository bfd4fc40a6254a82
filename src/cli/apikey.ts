// `meshward apikey create|list|revoke|rotate|scan` (docs/api-credentials.md): API keys in a key file that the
// sidecar reads. A key is printed once and only its SHA-256 is stored; HMAC keys also store their HMAC secret.
// Every change is read-modify-write under a lock file and written atomically (mode 0600), so concurrent runs
// keep every record. `scan` is a pre-commit hook: it lists file:line of every checksum-valid key.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Argv, CommandModule } from 'yargs';
import { invalid, isMeshwardError, MeshwardError } from '../errors.js';
import { formatDuration } from '../duration.js';
import { writeFileAtomic } from '../files.js';
import { withFileLock } from '../file-lock.js';
import { compileSpiffePattern } from '../pki/spiffe.js';
import { findApiKeys, generateApiKey, generateSecretFor, hashSecret } from '../auth/api-key.js';
import {
  addKey, API_KEY_FILE, apiKeyFileSchema, formatApiKeyFile, HMAC_SECRET_BYTES, keyStatus, revokeKey, rotateKey, SCOPE_NAME,
  type ApiKeyFile, type ApiKeyRecord,
} from '../auth/key-file.js';
import { ExitStatus, commandGroup, durationFlag, failAsUsage } from './command-support.js';
import { ConfigFile } from '../config-file.js';

/** The key file's content errors as usage errors: `apikey` exits 2 on a malformed --file. */
const KEY_FILE_AS_USAGE = new ConfigFile(apiKeyFileSchema, { what: 'the API key file (--file)', code: 'usage' });
const DEFAULT_TTL = '90d';
const DEFAULT_GRACE = '24h';
/** Skipped when scan recurses (dependencies and git's own objects are not the project's text). */
const SKIPPED_DIRECTORIES = new Set(['node_modules', '.git']);
/** A NUL in the first bytes marks a binary file, as git and grep decide. */
const BINARY_SNIFF_BYTES = 8000;

/**
 * The key file's records; a missing file is an empty one only when `missingIsEmpty` (create). Read through
 * the one config-file loader: a missing or unreadable file is an error of its own (exit 1), a malformed one
 * a usage error (exit 2, `FILE: keys.ID.field: sentence`), since the user named the file and nothing changed.
 */
function readKeyFile(path: string, missingIsEmpty: boolean): ApiKeyFile {
  const reader = new ConfigFile(apiKeyFileSchema, { what: 'the API key file (--file)', ifMissing: `meshward apikey create --file ${path} makes it` });
  let text: string;
  try {
    text = reader.read(path);
  } catch (err) {
    if (missingIsEmpty && isMeshwardError(err) && err.code === 'not_found') return { keys: [] };
    throw err;
  }
  return KEY_FILE_AS_USAGE.parse(text, path);
}

/** Reads, changes and writes the key file under its lock; the change sees the latest records. */
async function updateKeyFile<T>(path: string, missingIsEmpty: boolean, change: (file: ApiKeyFile) => { file: ApiKeyFile; result: T }): Promise<T> {
  return withFileLock(path, () => {
    const { file, result } = change(readKeyFile(path, missingIsEmpty));
    const text = formatApiKeyFile(file);
    // What is written must read back: a bug here must not leave a file the sidecar refuses.
    API_KEY_FILE.parse(text, path);
    writeFileAtomic(path, text, 0o600);
    return result;
  });
}

function parseScopes(text: string): string[] {
  const scopes = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (scopes.length === 0) throw new MeshwardError('usage', '--scopes must name at least one scope, e.g. --scopes orders:read,orders:write');
  for (const s of scopes) {
    if (!SCOPE_NAME.test(s)) throw new MeshwardError('usage', `--scopes: "${s}" is not a scope name (printable ASCII without spaces, quotes or backslashes)`);
  }
  if (new Set(scopes).size !== scopes.length) throw new MeshwardError('usage', '--scopes lists a scope twice');
  return scopes;
}

function positiveDuration(text: string, flag: string, allowZero: boolean): number {
  const ms = durationFlag(text, flag);
  if (ms < 0 || (!allowZero && ms === 0)) throw new MeshwardError('usage', `${flag} must be ${allowZero ? 'zero or more' : 'more than zero'}`);
  return ms;
}

interface CreateArgs {
  file: string; name: string; scopes: string; ttl: string; 'bound-to'?: string; rps?: number; burst?: number; hmac?: boolean; json?: boolean;
}

function newRecord(a: CreateArgs, now: Date): { record: ApiKeyRecord; key: string; hmacSecret?: Buffer } {
  if (a.name.trim() === '' || /[\x00-\x1f\x7f]/.test(a.name)) throw new MeshwardError('usage', '--name must be a non-empty name without control characters');
  const scopes = parseScopes(a.scopes);
  const ttlMs = positiveDuration(a.ttl, '--ttl', false);
  if (a['bound-to'] !== undefined) {
    try {
      compileSpiffePattern(a['bound-to']);
    } catch (err) {
      throw new MeshwardError('usage', `--bound-to: ${(err as Error).message}`);
    }
  }
  if (a.burst !== undefined && a.rps === undefined) throw new MeshwardError('usage', '--burst needs --rps');
  if (a.rps !== undefined && !(a.rps > 0)) throw new MeshwardError('usage', `--rps must be greater than 0, got ${a.rps}`);
  if (a.burst !== undefined && !(Number.isInteger(a.burst) && a.burst >= 1)) throw new MeshwardError('usage', `--burst must be a whole number of at least 1, got ${a.burst}`);
  const generated = generateApiKey();
  const record: ApiKeyRecord = {
    id: generated.id,
    name: a.name,
    scopes,
    created: now,
    expires: new Date(now.getTime() + ttlMs),
    secretHashes: [{ sha256: hashSecret(generated.secret) }],
  };
  let hmacSecret: Buffer | undefined;
  if (a.hmac) {
    hmacSecret = randomBytes(HMAC_SECRET_BYTES);
    record.hmacSecrets = [{ secret: hmacSecret }];
  }
  if (a['bound-to'] !== undefined) record.boundTo = a['bound-to'];
  if (a.rps !== undefined) {
    record.rps = a.rps;
    record.burst = a.burst ?? Math.max(1, Math.ceil(a.rps));
  }
  return hmacSecret === undefined ? { record, key: generated.key } : { record, key: generated.key, hmacSecret };
}

/** stdout holds only the secrets (so `KEY=$(meshward apikey create ...)` works); stderr says what they are. */
interface PrintedKey {
  id: string;
  name: string;
  key: string;
  hmacSecret?: Buffer | undefined;
  json?: boolean | undefined;
  /** More JSON fields (rotate: previousKeyValidUntil). */
  extra?: Record<string, string | null>;
}

function printKey(o: PrintedKey, note: string): void {
  const secret = o.hmacSecret?.toString('base64') ?? null;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ id: o.id, name: o.name, key: o.key, secret, ...o.extra })}\n`);
    return;
  }
  process.stdout.write(`${o.key}\n${secret !== null ? `${secret}\n` : ''}`);
  process.stderr.write(`${note}\nThe key is shown only now: store it where the client keeps secrets (meshward keeps only its SHA-256).\n`
    + (secret !== null ? `The second line is the HMAC secret (base64 of ${HMAC_SECRET_BYTES} bytes; sign with keyid="${o.id}").\n` : ''));
}

/** How the commands on a key file start: yargs failures as usage errors naming `command`, and the required --file. */
function keyFileCommand(y: Argv, command: string, describe = 'the key file'): Argv<{ file: string }> {
  return failAsUsage(y, command).option('file', { type: 'string', demandOption: true, describe });
}

const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create',
  describe: 'create an API key (printed once; the file keeps its SHA-256)',
  builder: (y: Argv) => keyFileCommand(y, 'apikey create', 'the key file (created when missing)')
    .option('name', { type: 'string', demandOption: true, describe: 'who the key is for, e.g. partner-acme' })
    .option('scopes', { type: 'string', demandOption: true, describe: 'comma-separated scopes the key holds' })
    .option('ttl', { type: 'string', default: DEFAULT_TTL, describe: 'lifetime, e.g. 90d, 720h' })
    .option('bound-to', { type: 'string', describe: 'SPIFFE ID pattern: the key works only over mTLS with a matching identity' })
    .option('rps', { type: 'number', describe: 'the key\'s own rate limit (requests per second)' })
    .option('burst', { type: 'number', describe: 'burst for --rps (default: rps rounded up)' })
    .option('hmac', { type: 'boolean', describe: 'also make an HMAC secret for RFC 9421 request signatures' })
    .option('json', { type: 'boolean', describe: 'print {"id","name","key","secret"} as JSON' }) as unknown as Argv<CreateArgs>,
  handler: async (a) => {
    const now = new Date();
    const made = newRecord(a, now);
    await updateKeyFile(a.file, true, (file) => ({ file: addKey(file, made.record), result: undefined }));
    printKey({ id: made.record.id, name: a.name, key: made.key, hmacSecret: made.hmacSecret, json: a.json },
      `created API key ${made.record.id} (${a.name}) with scopes ${made.record.scopes.join(', ')}, expiring ${made.record.expires!.toISOString()}, in ${a.file}`);
  },
};

interface ListArgs { file: string; json?: boolean }

function describeKey(k: ApiKeyRecord, now: Date) {
  const previous = k.secretHashes.find((h) => h.until !== undefined && h.until.getTime() > now.getTime());
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes,
    status: keyStatus(k, now),
    created: k.created.toISOString(),
    expires: k.expires?.toISOString() ?? null,
    revoked: k.revoked?.toISOString() ?? null,
    hmac: k.hmacSecrets !== undefined,
    boundTo: k.boundTo ?? null,
    rps: k.rps ?? null,
    burst: k.burst ?? null,
    previousKeyValidUntil: previous?.until?.toISOString() ?? null,
  };
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'list the keys of a key file (never a secret)',
  builder: (y: Argv) => keyFileCommand(y, 'apikey list')
    .option('json', { type: 'boolean', describe: 'print a JSON array' }) as unknown as Argv<ListArgs>,
  handler: (a) => {
    const now = new Date();
    const keys = readKeyFile(a.file, false).keys.map((k) => describeKey(k, now));
    if (a.json) {
      process.stdout.write(`${JSON.stringify(keys, null, 2)}\n`);
      return;
    }
    if (keys.length === 0) {
      process.stdout.write(`no API keys in ${a.file}\n`);
      return;
    }
    const rows = [['ID', 'NAME', 'SCOPES', 'STATUS', 'EXPIRES', 'HMAC', 'BOUND-TO', 'RATE']];
    for (const k of keys) {
      const status = k.status === 'rotating' ? `rotating (old key until ${k.previousKeyValidUntil})` : k.status === 'revoked' ? `revoked ${k.revoked}` : k.status;
      rows.push([k.id, k.name, k.scopes.join(','), status, k.expires ?? 'never', k.hmac ? 'yes' : 'no', k.boundTo ?? '-', k.rps !== null ? `${k.rps}/s burst ${k.burst}` : '-']);
    }
    process.stdout.write(`${formatTable(rows)}\n`);
  },
};

interface RevokeArgs { file: string; id: string }

const revokeCommand: CommandModule<object, RevokeArgs> = {
  command: 'revoke',
  describe: 'revoke a key: every use is refused from now on',
  builder: (y: Argv) => keyFileCommand(y, 'apikey revoke')
    .option('id', { type: 'string', demandOption: true, describe: 'the key id (apikey list shows them)' }) as unknown as Argv<RevokeArgs>,
  handler: async (a) => {
    const name = await updateKeyFile(a.file, false, (file) => {
      const next = revokeKey(file, a.id, new Date());
      return { file: next, result: next.keys.find((k) => k.id === a.id)!.name };
    });
    process.stdout.write(`revoked API key ${a.id} (${name}) in ${a.file}\n`);
  },
};

interface RotateArgs { file: string; id: string; grace: string; json?: boolean }

const rotateCommand: CommandModule<object, RotateArgs> = {
  command: 'rotate',
  describe: 'give a key a new secret (same id); the old one works until the grace period ends',
  builder: (y: Argv) => keyFileCommand(y, 'apikey rotate')
    .option('id', { type: 'string', demandOption: true, describe: 'the key id' })
    .option('grace', { type: 'string', default: DEFAULT_GRACE, describe: 'how long the old key keeps working, e.g. 24h; 0s ends it now' })
    .option('json', { type: 'boolean', describe: 'print {"id","name","key","secret","previousKeyValidUntil"} as JSON' }) as unknown as Argv<RotateArgs>,
  handler: async (a) => {
    const graceMs = positiveDuration(a.grace, '--grace', true);
    const now = new Date();
    const fresh = generateSecretFor(a.id);
    const result = await updateKeyFile(a.file, false, (file) => {
      const old = file.keys.find((k) => k.id === a.id);
      const hmacSecret = old?.hmacSecrets !== undefined ? randomBytes(HMAC_SECRET_BYTES) : undefined;
      const next = rotateKey(file, a.id, hmacSecret ? { sha256: hashSecret(fresh.secret), hmacSecret } : { sha256: hashSecret(fresh.secret) }, now, graceMs);
      return { file: next, result: { name: old!.name, hmacSecret } };
    });
    const until = graceMs > 0 ? new Date(now.getTime() + graceMs).toISOString() : null;
    printKey({ id: a.id, name: result.name, key: fresh.key, hmacSecret: result.hmacSecret, json: a.json, extra: { previousKeyValidUntil: until } },
      `rotated API key ${a.id} (${result.name}) in ${a.file}: ${until ? `the old key works until ${until} (${formatDuration(graceMs)})` : 'the old key stopped working now'}`);
  },
};

interface ScanArgs { paths: string[] }

/** Every file to scan under `path`: directories recursed (not through symlinks), node_modules and .git skipped. */
function filesUnder(path: string, out: string[]): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new MeshwardError('not_found', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  if (!st.isDirectory()) {
    out.push(path);
    return;
  }
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const child = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) walk(child);
      } else if (entry.isFile()) {
        out.push(child);
      }
    }
  };
  walk(path);
}

/** `file:line` of every key in one file; none for binary files. */
function scanFile(path: string): string[] {
  // A named FIFO or device would block or never end: regular files only.
  if (!statSync(path).isFile()) return [];
  const data = readFileSync(path);
  if (data.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return [];
  const text = data.toString('utf8');
  const hits: string[] = [];
  let line = 1;
  let at = 0;
  for (const found of findApiKeys(text)) {
    for (; at < found.index; at++) if (text.charCodeAt(at) === 10) line++;
    hits.push(`${path}:${line}: API key ${found.id}`);
  }
  return hits;
}

const scanCommand: CommandModule<object, ScanArgs> = {
  command: 'scan <paths..>',
  describe: 'list file:line of every meshward API key (checksum-valid) in files or directories; exit 1 when any',
  builder: (y: Argv) => failAsUsage(y, 'apikey scan', 'name the files or directories to scan: meshward apikey scan PATH…')
    .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'files and directories to scan' }) as unknown as Argv<ScanArgs>,
  handler: (a) => {
    const files: string[] = [];
    for (const p of a.paths) filesUnder(p, files);
    const hits = files.flatMap(scanFile);
    if (hits.length > 0) {
      process.stdout.write(`${hits.join('\n')}\n`);
      process.stderr.write(`found ${hits.length} API key${hits.length === 1 ? '' : 's'}: remove ${hits.length === 1 ? 'it' : 'them'} and rotate or revoke the key${hits.length === 1 ? '' : 's'} (meshward apikey rotate/revoke)\n`);
      ExitStatus.code = 1;
    }
  },
};

export const apikeyCommand = commandGroup('apikey', 'API keys (and HMAC secrets) for the sidecar\'s credentials: create, list, revoke, rotate, scan',
  [createCommand, listCommand, revokeCommand, rotateCommand, scanCommand], 'name an apikey command: create, list, revoke, rotate, scan');
