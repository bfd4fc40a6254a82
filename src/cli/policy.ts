// `meshward policy check`: what a policy decides for one request from one caller (a certificate and/or
// API credentials, taken as valid: --api-key-id with the key file, --hmac-key-id, --jwt-claims), and the
// rule that decided it, without starting a sidecar. Exit 0 when the request would be let through, 1 when not, 2 on
// a usage error or a policy that does not load.
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { MeshwardError } from '../errors.js';
import { parseCertificate } from '../pki/certificate.js';
import { readDerOrPem } from '../pki/pem.js';
import { spiffeIdProblem } from '../pki/spiffe.js';
import { identityFromCertificate } from '../sidecar/tls/identity.js';
import { ANONYMOUS, loadPolicyFile, type Decision, type Policy, type Subject, type Verdicts } from '../sidecar/policy/policy.js';
import { API_KEY_FILE } from '../auth/key-file.js';
import { ApiKeySet, statusRefusal } from '../auth/key-set.js';
import { refuse, type AuthVerdict } from '../auth/verdict.js';
import { ExitStatus } from './command-support.js';

interface CheckArgs {
  policy: string;
  'spiffe-id'?: string;
  cert?: string;
  'api-keys'?: string;
  'api-key-id'?: string;
  'hmac-key-id'?: string;
  'jwt-claims'?: string;
  method: string;
  path: string;
  json: boolean;
}

function subjectFromSpiffeId(id: string): Subject {
  const problem = spiffeIdProblem(id);
  if (problem !== undefined) throw new MeshwardError('usage', `--spiffe-id "${id}" is not a SPIFFE ID: ${problem}.`);
  return { spiffeId: id, ou: [], id };
}

function subjectFromCertificate(file: string): Subject {
  let input: Buffer;
  try {
    input = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MeshwardError(code === 'ENOENT' ? 'not_found' : 'unavailable', `${file}: cannot read the certificate (${code ?? String(err)}).`);
  }
  // The first certificate is the leaf when the file holds a chain (tls.crt).
  const der = readDerOrPem(input, 'CERTIFICATE')[0];
  if (der === undefined) throw new MeshwardError('invalid_argument', `${file}: holds no certificate.`);
  const identity = identityFromCertificate(parseCertificate(der));
  const subject: Subject = { ou: identity.ou, id: identity.id };
  if (identity.spiffeId !== undefined) subject.spiffeId = identity.spiffeId;
  if (identity.cn !== undefined) subject.cn = identity.cn;
  return subject;
}

/** The verdict a valid key of the key file would get (or why it would be refused: unknown, revoked, expired, bound). */
function keyVerdict(kind: 'apikey' | 'hmac', id: string, keyFile: string | undefined, now: number, subject: Subject | undefined): AuthVerdict {
  if (keyFile === undefined) throw new MeshwardError('usage', `--${kind === 'apikey' ? 'api' : 'hmac'}-key-id needs --api-keys FILE (the key file that holds its scopes).`);
  const keys = ApiKeySet.fromFile(API_KEY_FILE.load(keyFile));
  const entry = keys.get(id);
  if (entry === undefined) return refuse(kind, 'unknown_key', `no key with id ${id} in ${keyFile}`, id);
  if (kind === 'hmac' && entry.hmacSecrets.length === 0) return refuse(kind, 'unknown_key', `key ${id} is not an HMAC key`, id);
  const peer = subject?.spiffeId !== undefined ? { spiffeId: subject.spiffeId } : undefined;
  return statusRefusal(entry, kind, now, peer) ?? entry.accepted[kind];
}

/** The verdict a token with these (already verified) claims would get: principal and scopes from iss, sub, scope or scp. */
function jwtVerdict(file: string): AuthVerdict {
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(readInput(file, 'the JWT claims')) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof MeshwardError) throw err;
    throw new MeshwardError('invalid_argument', `${file}: not a JSON object of claims: ${(err as Error).message}`);
  }
  if (typeof claims.iss !== 'string' || typeof claims.sub !== 'string') throw new MeshwardError('invalid_argument', `${file}: the claims need iss and sub (strings).`);
  const raw = claims.scope ?? claims.scp ?? [];
  const scopes = typeof raw === 'string' ? raw.split(' ').filter(Boolean) : Array.isArray(raw) ? raw.map(String) : [];
  return { ok: true, kind: 'jwt', principal: `jwt:${claims.iss}#${claims.sub}`, scopes };
}

function readInput(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MeshwardError(code === 'ENOENT' ? 'not_found' : 'unavailable', `${file}: cannot read ${what} (${code ?? String(err)}).`);
  }
}

/**
 * The policy is configuration: one that does not load (missing, unreadable, malformed) is a usage error,
 * exit 2, as for the sidecar at start; exit 1 here means the request would be refused.
 */
function loadPolicy(file: string): Policy {
  try {
    return loadPolicyFile(file);
  } catch (err) {
    if (err instanceof MeshwardError) throw new MeshwardError('usage', err.message.split('\n')[0]!);
    throw err;
  }
}

function verdict(policy: Policy, d: Decision): { word: string; key: string } {
  if (d.status === 400) return { word: 'BAD REQUEST (400)', key: 'bad_request' };
  if (!d.wouldDeny) return { word: 'ALLOW', key: 'allow' };
  const denied = `DENY (${d.status})`;
  if (policy.mode === 'audit') return { word: `ALLOW (audit mode: enforce would ${denied})`, key: 'audit_deny' };
  return { word: denied, key: 'deny' };
}

function check(args: CheckArgs): void {
  // --policy, --method and --path are strings here: yargs refuses a command line without them (or with one
  // given no value), and main.ts's .fail() throws, so this handler never runs after a usage error.
  const credentials = args['api-key-id'] !== undefined || args['hmac-key-id'] !== undefined || args['jwt-claims'] !== undefined;
  if (args['spiffe-id'] === undefined && args.cert === undefined && !credentials) {
    throw new MeshwardError('usage', 'name the caller: --spiffe-id ID or --cert FILE, and/or --api-key-id, --hmac-key-id, --jwt-claims.');
  }
  if (args['spiffe-id'] !== undefined && args.cert !== undefined) {
    throw new MeshwardError('usage', 'give either --spiffe-id or --cert, not both.');
  }
  if (!/^[A-Za-z]+$/.test(args.method)) throw new MeshwardError('usage', `--method "${args.method}" is not an HTTP method (GET, POST, …).`);
  const policy = loadPolicy(args.policy);
  const subject = args.cert !== undefined ? subjectFromCertificate(args.cert) : args['spiffe-id'] !== undefined ? subjectFromSpiffeId(args['spiffe-id']) : ANONYMOUS;
  const principal = policy.principal(subject);
  // Methods are case-sensitive on the wire, but on a command line "get" means GET.
  const method = args.method.toUpperCase();
  const now = Date.now();
  let decision = policy.decide(principal, method, args.path, now);
  if (decision.pending !== undefined) {
    // A route with `require`: the credentials named on the command line stand for what the request carries.
    const verdicts: Verdicts = {};
    const mtlsSubject = subject === ANONYMOUS ? undefined : subject;
    for (const kind of decision.pending.kinds) {
      const id = kind === 'apikey' ? args['api-key-id'] : kind === 'hmac' ? args['hmac-key-id'] : undefined;
      if (kind === 'jwt') verdicts.jwt = args['jwt-claims'] !== undefined ? jwtVerdict(args['jwt-claims']) : refuse('jwt', 'missing', 'no --jwt-claims');
      else verdicts[kind] = id !== undefined ? keyVerdict(kind, id, args['api-keys'], now, mtlsSubject) : refuse(kind, 'missing', `no --${kind === 'apikey' ? 'api' : 'hmac'}-key-id`);
    }
    decision = policy.authorize(decision, principal, verdicts, now);
  }
  const { word, key } = verdict(policy, decision);
  const scopes = [...principal.scopes];
  if (args.json) {
    const out = {
      decision: key,
      mode: policy.mode,
      ...decision,
      method,
      path: args.path,
      identity: principal.id,
      scopes,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const lines = [
      `${word}  ${method} ${args.path}`,
      `  rule:     ${decision.rule}`,
      `  reason:   ${decision.reason}`,
      `  identity: ${principal.id}`,
      `  scopes:   ${scopes.length > 0 ? principal.scopeHeader : '(none)'}`,
    ];
    if (decision.principals !== undefined) lines.push(`  principal: ${decision.principals}`, `  x-mesh-scopes: ${decision.scopes}`);
    if (decision.allow) lines.push(`  app gets: ${decision.target}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (!decision.allow) ExitStatus.code = 1;
}

const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check',
  describe: 'print what a policy decides for one request (ALLOW / DENY / BAD REQUEST), the rule and the reason',
  builder: (y: Argv<object>) =>
    y
      .option('policy', { type: 'string', demandOption: true, describe: 'policy file (YAML)', requiresArg: true })
      .option('spiffe-id', { type: 'string', describe: "the caller's SPIFFE ID", requiresArg: true })
      .option('cert', { type: 'string', describe: "the caller's certificate (PEM or DER; the first one is used)", requiresArg: true })
      .option('api-keys', { type: 'string', describe: 'the key file (for --api-key-id and --hmac-key-id)', requiresArg: true })
      .option('api-key-id', { type: 'string', describe: 'the request carries a valid API key with this id', requiresArg: true })
      .option('hmac-key-id', { type: 'string', describe: 'the request carries a valid HMAC signature by this key id', requiresArg: true })
      .option('jwt-claims', { type: 'string', describe: 'the request carries a valid JWT with these claims (a JSON file)', requiresArg: true })
      .option('method', { type: 'string', demandOption: true, describe: 'HTTP method (GET, POST, …)', requiresArg: true })
      .option('path', { type: 'string', demandOption: true, describe: 'request target as sent: /path?query', requiresArg: true })
      .option('json', { type: 'boolean', default: false, describe: 'print the decision as JSON' })
      .example('$0 policy check --policy policy.yaml --spiffe-id spiffe://example.org/ns/shop/sa/frontend --method GET --path /orders/1', '') as Argv<CheckArgs>,
  handler: (args) => check(args),
};

export const policyCommand: CommandModule = {
  command: 'policy',
  describe: 'policy commands: check what a policy decides',
  builder: (y) => y.command(checkCommand).demandCommand(1, 'name a policy command: check'),
  handler: () => undefined,
};
