// The CA's settings, `D/config.yaml`: trust domain, default and maximum certificate lifetime, key type and
// which SPIFFE IDs may be issued. Parsed strictly (an unknown key is an error naming it) because a typo in
// a CA's rules must not silently change what it issues.
import { z } from 'zod';
import { ConfigFile, configError } from '../config-file.js';
import { MeshwardError } from '../errors.js';
import { formatDuration, parseDuration } from '../duration.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';
import { compileSpiffePattern, parseSpiffeId } from '../pki/spiffe.js';
import { DEFAULT_ALLOWED_DNS_NAMES, SanPolicy } from './san-policy.js';

export interface CaConfig {
  trustDomain: string;
  defaultTtlMs: number;
  maxTtlMs: number;
  keyType: KeyType;
  /** SPIFFE ID patterns (`*` one segment, `**` the rest); an ID must match one to be issued. */
  allowedSpiffeIds: string[];
  /** DNS name patterns a workload may ask for over gRPC, with {{ns}}-style variables from its SPIFFE ID (src/ca/san-policy.ts). */
  allowedDnsNames: string[];
  /** IP addresses and CIDR ranges a workload may ask for over gRPC; none by default. */
  allowedIpAddresses: string[];
  /** How long a CRL is valid (its nextUpdate); `ca serve` writes a fresh one before half of it has passed. */
  crlValidityMs: number;
  /** Where the state is kept when neither --store nor MESHWARD_STORE says (docs/ca-operations.md): a postgres:// URL or `sqlite`. */
  store?: string;
}

export const DEFAULT_TTL_MS = 3_600_000;
export const DEFAULT_MAX_TTL_MS = 24 * 3_600_000;
/** CRLs are valid a week by default: `ca serve` renews them every few days, so a CA down for a weekend is no outage. */
export const DEFAULT_CRL_VALIDITY_MS = 7 * 24 * 3_600_000;
/** Below this a CRL could expire between two polls of a sidecar's directory. */
export const MIN_CRL_VALIDITY_MS = 10_000;

const duration = z.string({ error: 'must be a duration such as 1h or 90m' });
const schema = z.strictObject({
  trustDomain: z.string({ error: 'must be a trust domain such as example.org' }),
  defaultTtl: duration.optional(),
  maxTtl: duration.optional(),
  keyType: z.enum(KEY_TYPES as [KeyType, ...KeyType[]], { error: `must be one of ${KEY_TYPES.join(', ')}` }).optional(),
  allowedSpiffeIds: z.array(z.string({ error: 'must be a SPIFFE ID pattern' }), { error: 'must be a list of SPIFFE ID patterns' }).optional(),
  allowedDnsNames: z.array(z.string({ error: 'must be a DNS name pattern' }), { error: 'must be a list of DNS name patterns such as {{sa}}.{{ns}}.svc' }).optional(),
  allowedIpAddresses: z.array(z.string({ error: 'must be an IP address or CIDR range' }), { error: 'must be a list of IP addresses or CIDR ranges such as 10.0.0.0/8' }).optional(),
  store: z.string({ error: 'must be a postgres:// URL or sqlite' }).optional(),
  crlValidity: duration.optional(),
});

/** D/config.yaml; messages name it `config.yaml`, reading errors its full path. */
export const CA_CONFIG_FILE = new ConfigFile(schema, {
  what: 'the CA settings',
  ifMissing: 'this is not a CA directory (run meshward ca init)',
});

/** Checks a trust domain name as the SPIFFE spec wants it (lowercase, no port, no path). */
export function validateTrustDomain(trustDomain: string, what = 'trust domain'): string {
  let parsed;
  try {
    parsed = parseSpiffeId(`spiffe://${trustDomain}`);
  } catch (err) {
    throw new MeshwardError('invalid_argument', `${what} "${trustDomain}" is not valid: ${(err as Error).message}`);
  }
  if (parsed.trustDomain !== trustDomain || parsed.path !== '') {
    throw new MeshwardError('invalid_argument', `${what} "${trustDomain}" is not valid: use a bare lowercase DNS-style name such as example.org`);
  }
  return trustDomain;
}

/** Validates a document already read from YAML; every message names the file and the field. */
export function compileCaConfig(doc: unknown, source: string): CaConfig {
  return withRules(CA_CONFIG_FILE.validate(doc, source), source);
}

export function parseCaConfig(text: string, source: string): CaConfig {
  return withRules(CA_CONFIG_FILE.parse(text, source), source);
}

export function loadCaConfig(path: string): CaConfig {
  return withRules(CA_CONFIG_FILE.load(path, 'config.yaml'), 'config.yaml');
}

/** The rules beyond the shape (a valid trust domain, durations, patterns inside it), with defaults. */
function withRules(c: z.output<typeof schema>, source: string): CaConfig {
  const refuse = (path: PropertyKey[], message: string) => configError(source, [{ path, message }]);
  const field = <T>(path: PropertyKey[], fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw refuse(path, (err as Error).message);
    }
  };
  const trustDomain = field(['trustDomain'], () => validateTrustDomain(c.trustDomain));
  const defaultTtlMs = c.defaultTtl === undefined ? DEFAULT_TTL_MS : field(['defaultTtl'], () => parseDuration(c.defaultTtl!, 'duration'));
  const maxTtlMs = c.maxTtl === undefined ? DEFAULT_MAX_TTL_MS : field(['maxTtl'], () => parseDuration(c.maxTtl!, 'duration'));
  if (defaultTtlMs <= 0) throw refuse(['defaultTtl'], 'must be positive');
  if (maxTtlMs <= 0) throw refuse(['maxTtl'], 'must be positive');
  if (defaultTtlMs > maxTtlMs) {
    throw refuse(['defaultTtl'], `${formatDuration(defaultTtlMs)} is above maxTtl ${formatDuration(maxTtlMs)}`);
  }
  const crlValidityMs = c.crlValidity === undefined ? DEFAULT_CRL_VALIDITY_MS : field(['crlValidity'], () => parseDuration(c.crlValidity!, 'duration'));
  if (crlValidityMs < MIN_CRL_VALIDITY_MS) throw refuse(['crlValidity'], `${formatDuration(crlValidityMs)} is too short: use at least ${formatDuration(MIN_CRL_VALIDITY_MS)}`);
  const allowedSpiffeIds = c.allowedSpiffeIds ?? [`spiffe://${trustDomain}/**`];
  allowedSpiffeIds.forEach((pattern, i) => {
    field(['allowedSpiffeIds', i], () => compileSpiffePattern(pattern));
    if (!pattern.startsWith(`spiffe://${trustDomain}/`)) {
      throw refuse(['allowedSpiffeIds', i], `"${pattern}" is outside the trust domain ${trustDomain}: start it with spiffe://${trustDomain}/`);
    }
  });
  const allowedDnsNames = c.allowedDnsNames ?? [...DEFAULT_ALLOWED_DNS_NAMES];
  allowedDnsNames.forEach((t, i) => field(['allowedDnsNames', i], () => SanPolicy.compile([t], [])));
  const allowedIpAddresses = c.allowedIpAddresses ?? [];
  allowedIpAddresses.forEach((r, i) => field(['allowedIpAddresses', i], () => SanPolicy.compile([], [r])));
  return { trustDomain, defaultTtlMs, maxTtlMs, keyType: c.keyType ?? 'ec-p256', allowedSpiffeIds, allowedDnsNames, allowedIpAddresses, crlValidityMs, ...(c.store !== undefined ? { store: c.store } : {}) };
}

/** The YAML written by `ca init`: every field spelled out so an operator sees what can be changed. */
export function formatCaConfig(c: CaConfig): string {
  return [
    '# meshward CA settings (read at every start; unknown keys are errors).',
    `trustDomain: ${c.trustDomain}`,
    `defaultTtl: ${formatDuration(c.defaultTtlMs)}       # lifetime of a certificate when none is asked for`,
    `maxTtl: ${formatDuration(c.maxTtlMs)}          # the longest lifetime this CA issues`,
    `keyType: ${c.keyType}     # key type of keys generated by cert issue: ${KEY_TYPES.join(', ')}`,
    'allowedSpiffeIds:           # an ID must match one pattern (`*` one segment, `**` the rest)',
    ...c.allowedSpiffeIds.map((p) => `  - ${JSON.stringify(p)}`),
    'allowedDnsNames:            # DNS names a workload may ask for over gRPC ({{ns}}, {{sa}}: from its SPIFFE ID; *. one label, **. any)',
    ...c.allowedDnsNames.map((p) => `  - ${JSON.stringify(p)}`),
    `allowedIpAddresses: ${c.allowedIpAddresses.length === 0 ? '[]' : ''}         # IP addresses or CIDR ranges a workload may ask for over gRPC`,
    ...c.allowedIpAddresses.map((p) => `  - ${JSON.stringify(p)}`),
    `crlValidity: ${formatDuration(c.crlValidityMs)}     # CRLs are valid this long; ca serve renews them before half of it has passed`,
    ...(c.store !== undefined ? [`store: ${JSON.stringify(c.store)}   # where the CA's state is (--store and MESHWARD_STORE override it)`] : []),
    '',
  ].join('\n');
}
