// The sidecar's YAML configuration (docs/configuration.md): read, validated strictly (unknown keys are
// errors, so a typo cannot silently change behaviour) and turned into typed values. Every refusal is one
// line naming the file and the field: "sidecar.yaml: inbound.app: must be http://, h2c:// or tcp:// HOST:PORT".
// A refusal is a usage error: `meshward sidecar` exits 2 before anything listens.
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigFile } from '../config-file.js';
import { DEFAULT_IDENTITY_LABELS } from './observe/identity-labels.js';
import { formatDuration, parseDuration } from '../duration.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';
import { compileSpiffePattern, parseWorkloadSpiffeId } from '../pki/spiffe.js';
import { DEFAULT_MAX_SKEW_MS } from '../auth/http-signature.js';
import { JwtVerifier } from '../auth/jwt.js';

export interface HostPort {
  host: string;
  port: number;
}

export type AppProtocol = 'http' | 'h2c' | 'tcp';

export interface InboundConfig {
  listen: HostPort;
  /** http://host:port, h2c://host:port or tcp://host:port */
  app: URL;
  protocol: AppProtocol;
  /** require (default): no certificate, no connection. optional: callers without one get in unauthenticated. */
  clientCertificate: 'require' | 'optional';
}

/** Where a JWT issuer's keys come from (credentials.jwt[].jwks). */
export type JwksSource = { kind: 'file'; path: string } | { kind: 'url'; url: string };

export interface JwtIssuerSettings {
  issuer: string;
  audiences: string[];
  algorithms: string[];
  scopeClaim?: string;
  requireCertBound?: boolean;
  jwks: JwksSource;
  /** A JWKS URL is fetched again this often (and on an unknown kid, at most once per minRefetchIntervalMs). */
  refreshMs: number;
  minRefetchIntervalMs: number;
}

/** The `credentials:` section (docs/api-credentials.md): API keys, HMAC signatures, JWT issuers. */
export interface CredentialsConfig {
  /** The key file written by `meshward apikey`. */
  apiKeys?: string;
  hmac: { maxSkewMs: number; maxBodyBytes: number };
  jwt: JwtIssuerSettings[];
}

export interface OutboundConfig {
  listen: HostPort;
  upstream: HostPort;
  /** SPIFFE ID pattern the upstream must prove. */
  identity: string;
  /** http: HTTP/1.1 and HTTP/2 (prior knowledge) over pooled connections; tcp: a byte tunnel. */
  protocol: 'http' | 'tcp';
  /** TCP connect plus TLS handshake to the upstream must finish within this (else 504). */
  connectTimeoutMs: number;
  /** An upstream connection on which nothing moves for this long is closed (a request waiting on it: 504). */
  idleTimeoutMs: number;
}

export const DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS = 5000;
/** Half the upstream sidecar's default limits.idleTimeout, so we close a pooled connection before it does. */
export const DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS = 30_000;

/** identity.provision: run the renewal agent in-process so a pod needs one container (issue 4). */
export interface ProvisionConfig {
  /** host:port of `meshward ca serve`. */
  ca: string;
  /** Roots that sign the CA's serving certificate. */
  bundle: string;
  token?: string;
  /** Re-read at every attempt: a projected service-account token is refreshed in place. */
  tokenFile?: string;
  spiffeId?: string;
  keyType?: KeyType;
  ttlMs?: number;
}

export type PolicySource = { kind: 'file'; path: string } | { kind: 'inline'; doc: unknown };

export interface Limits {
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  /** 0 = no limit on a whole request (streams, long polls). */
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxHeaderSize: number;
  drainTimeoutMs: number;
  /** 0 = no limit: a connection then ends only with its peer's certificate (or the trust it was accepted under). */
  maxConnectionAgeMs: number;
}

export interface SidecarConfig {
  /** The config file path as given (used in messages). */
  source: string;
  identity: { dir: string; recheckIntervalMs: number; provision?: ProvisionConfig };
  inbound?: InboundConfig;
  outbound: OutboundConfig[];
  policy?: PolicySource;
  credentials?: CredentialsConfig;
  admin: HostPort;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'; allowed: 'info' | 'debug' | 'silent' };
  limits: Limits;
  /** /metrics: how many caller identities (the most active) have their own `identity` label value. */
  metrics: { identities: number };
  /** Processes serving traffic: 1 = this process alone; more = a node:cluster primary and N workers. */
  workers: number;
}

export const DEFAULT_LIMITS: Limits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxHeaderSize: 16_384,
  drainTimeoutMs: 20_000,
  maxConnectionAgeMs: 0,
};
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:15000';
export const DEFAULT_RECHECK_INTERVAL_MS = 30_000;
export const DEFAULT_HMAC_MAX_BODY = 1024 * 1024;
export const DEFAULT_JWKS_REFRESH_MS = 600_000;
export const DEFAULT_JWKS_MIN_REFETCH_MS = 30_000;

/** "host:port", "[::1]:port" or ":port" (all interfaces). */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]*)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? m[2]!;
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

const APP_MESSAGE = 'must be http://, h2c:// or tcp:// HOST:PORT';

function parseApp(text: string): { app: URL; protocol: AppProtocol } | undefined {
  const m = /^(http|h2c|tcp):\/\/([^/?#]+)\/?$/.exec(text);
  if (!m) return undefined;
  const hp = parseHostPort(m[2]!);
  if (!hp || hp.host === '0.0.0.0' || hp.port === 0) return undefined;
  return { app: new URL(`${m[1]}://${formatHostPort(hp)}`), protocol: m[1] as AppProtocol };
}

// Each leaf schema carries its own sentence, so the formatter only has to add the field path.
const required = (what: string) => (iss: { input?: unknown }) => (iss.input === undefined ? 'is required' : what);

const hostPort = (what = 'must be HOST:PORT, e.g. 127.0.0.1:8443') =>
  z.string({ error: required(what) }).transform((s, ctx) => {
    const hp = parseHostPort(s.trim());
    if (!hp) {
      ctx.issues.push({ code: 'custom', message: what, input: s });
      return z.NEVER;
    }
    return hp;
  });

const duration = z
  .union([z.string(), z.number()], { error: 'must be a duration such as 10s, 5m or 1h' })
  .transform((v, ctx) => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v) || v < 0) ctx.issues.push({ code: 'custom', message: 'must be a duration such as 10s, 5m or 1h', input: v });
      return v * 1000; // a bare number is seconds, like Kubernetes' *Seconds fields
    }
    try {
      return parseDuration(v, 'the value');
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: (err as Error).message.replace(/^the value /, 'the duration '), input: v });
      return z.NEVER;
    }
  });

/**
 * An outbound time limit: more than zero. `0` used to fall back to the default without a word; it is
 * refused instead of read as "no limit", because a connect or an upstream that never answers would then
 * hold the app's request (and its pooled slot) forever. Envoy refuses a zero cluster connect_timeout too.
 */
const outboundTimeout = (defaultMs: number, unlimited: string) => duration.superRefine((ms, ctx) => {
  if (typeof ms === 'number' && ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `must be more than 0 (there is no "no limit": ${unlimited}); leave it out for the default ${formatDuration(defaultMs)}` });
  }
});

export const WORKERS_MESSAGE = 'must be a positive integer or "auto"';

/**
 * `workers`: a positive integer, or "auto" for one per core. Digit strings are accepted too, because
 * the CLI override arrives as text and YAML users often quote numbers. Undefined when not valid.
 */
export function parseWorkers(value: unknown): number | undefined {
  if (value === 'auto') return availableParallelism();
  if (typeof value === 'string' && /^[1-9][0-9]*$/.test(value.trim())) value = Number(value.trim());
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  return undefined;
}

const workers = z.unknown().transform((v, ctx) => {
  const n = parseWorkers(v);
  if (n === undefined) {
    ctx.issues.push({ code: 'custom', message: WORKERS_MESSAGE, input: v });
    return z.NEVER;
  }
  return n;
});

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3 };
const SIZE_MESSAGE = 'must be a size such as 1MiB, 512KiB or 65536 (bytes)';

/** "1MiB", "512KiB", "64KB", or a number of bytes. */
const size = z.union([z.string(), z.number()], { error: SIZE_MESSAGE }).transform((v, ctx) => {
  const m = typeof v === 'number' ? [String(v), String(v), ''] : /^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$/.exec(v);
  const bytes = m === null ? NaN : Number(m[1]) * SIZE_UNITS[m[2] ?? '']!;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.issues.push({ code: 'custom', message: SIZE_MESSAGE, input: v });
    return z.NEVER;
  }
  return bytes;
});

/** A JWKS location: a file path, or an https:// URL (http:// only on the loopback interface, for local issuers). */
const jwksLocation = z.string({ error: required('must be a JWKS file path or an https:// URL') }).min(1, 'must be a JWKS file path or an https:// URL').transform((s, ctx) => {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return { kind: 'file' as const, path: s };
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    ctx.issues.push({ code: 'custom', message: 'is not a valid URL', input: s });
    return z.NEVER;
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    ctx.issues.push({ code: 'custom', message: 'must be an https:// URL (http:// only for 127.0.0.1, localhost or [::1]): keys fetched in clear text could be replaced', input: s });
    return z.NEVER;
  }
  return { kind: 'url' as const, url: url.href };
});

const credentialsShape = z.strictObject(
  {
    apiKeys: z.string({ error: 'must be the path of the key file written by meshward apikey' }).min(1, 'must be the path of the key file written by meshward apikey').optional(),
    hmac: z.strictObject({ maxSkew: duration.optional(), maxBody: size.optional() }, { error: 'must be a mapping with maxSkew and/or maxBody' }).optional(),
    jwt: z
      .array(
        z.strictObject(
          {
            issuer: z.string({ error: required('must be the exact iss of the tokens') }),
            audiences: z.array(z.string(), { error: required('must list the audiences this service accepts, e.g. [orders-api]') }),
            jwks: jwksLocation,
            algorithms: z.array(z.string(), { error: required('must list the allowed algorithms, e.g. [ES256, RS256]') }),
            scopeClaim: z.string().optional(),
            requireCertBound: z.boolean({ error: 'must be true or false' }).optional(),
            refresh: duration.optional(),
            minRefetchInterval: duration.optional(),
          },
          { error: 'must be a mapping with issuer, audiences, jwks and algorithms' },
        ),
        { error: 'must be a list of issuers' },
      )
      .optional(),
  },
  { error: 'must be a mapping with apiKeys, hmac and/or jwt' },
);

const positiveInt = z.number({ error: 'must be a positive whole number' }).int('must be a positive whole number').positive('must be a positive whole number');

const schema = z
  .strictObject({
    identity: z.strictObject(
      {
        dir: z.string({ error: required('must be a directory path') }).min(1, 'must be a directory path'),
        recheckInterval: duration.optional(),
        provision: z
          .strictObject(
            {
              ca: hostPort('must be HOST:PORT of meshward ca serve, e.g. meshward-ca.meshward-system.svc:8443').transform((hp) => formatHostPort(hp)),
              bundle: z.string({ error: required('must be the path of the CA trust bundle (PEM)') }).min(1, 'must be the path of the CA trust bundle (PEM)'),
              token: z.string().min(1, 'must not be empty').optional(),
              tokenFile: z.string().min(1, 'must not be empty').optional(),
              spiffeId: z
                .string()
                .transform((s, ctx) => {
                  try {
                    return parseWorkloadSpiffeId(s).id;
                  } catch (err) {
                    ctx.issues.push({ code: 'custom', message: (err as Error).message, input: s });
                    return z.NEVER;
                  }
                })
                .optional(),
              keyType: z.enum(KEY_TYPES as unknown as [KeyType, ...KeyType[]], { error: `must be one of ${KEY_TYPES.join(', ')}` }).optional(),
              ttl: duration.optional(),
            },
            { error: 'must be a mapping with ca, bundle and token or tokenFile' },
          )
          .optional(),
      },
      { error: required('must be a mapping with dir') },
    ),
    inbound: z
      .strictObject(
        {
          listen: hostPort(),
          app: z.string({ error: required(APP_MESSAGE) }).transform((s, ctx) => {
            const app = parseApp(s.trim());
            if (!app) {
              ctx.issues.push({ code: 'custom', message: APP_MESSAGE, input: s });
              return z.NEVER;
            }
            return app;
          }),
          clientCertificate: z.enum(['require', 'optional'], { error: 'must be require (the default) or optional' }).optional(),
        },
        { error: 'must be a mapping with listen and app' },
      )
      .optional(),
    policy: z
      .union([z.string().min(1), z.record(z.string(), z.unknown())], {
        error: 'must be a policy file path or an inline policy mapping',
      })
      .optional(),
    outbound: z
      .array(
        z.strictObject(
          {
            listen: hostPort(),
            upstream: hostPort('must be HOST:PORT of the upstream sidecar, e.g. orders.shop.svc:8443'),
            protocol: z.enum(['http', 'tcp'], { error: 'must be http (HTTP/1.1 and HTTP/2) or tcp' }).optional(),
            connectTimeout: outboundTimeout(DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS, 'an upstream that never completes the connection would hold the request forever').optional(),
            idleTimeout: outboundTimeout(DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS, 'an upstream that never answers would hold the request forever').optional(),
            identity: z.string({ error: required('must be a SPIFFE ID or pattern') }).transform((s, ctx) => {
              try {
                compileSpiffePattern(s);
              } catch (err) {
                ctx.issues.push({ code: 'custom', message: (err as Error).message, input: s });
                return z.NEVER;
              }
              return s;
            }),
          },
          { error: 'must be a mapping with listen, upstream and identity' },
        ),
        { error: 'must be a list of {listen, upstream, identity}' },
      )
      .optional(),
    credentials: credentialsShape.optional(),
    admin: z.strictObject({ listen: hostPort() }, { error: 'must be a mapping with listen' }).optional(),
    log: z
      .strictObject(
        {
          level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
            error: 'must be one of fatal, error, warn, info, debug, trace, silent',
          }).optional(),
          allowed: z.enum(['info', 'debug', 'silent'], { error: 'must be one of info, debug, silent' }).optional(),
        },
        { error: 'must be a mapping with level and/or allowed' },
      )
      .optional(),
    limits: z
      .strictObject(
        {
          handshakeTimeout: duration.optional(),
          headersTimeout: duration.optional(),
          requestTimeout: duration.optional(),
          idleTimeout: duration.optional(),
          maxConnections: positiveInt.optional(),
          maxHeaderSize: positiveInt.max(1 << 20, 'must be at most 1048576 bytes').optional(),
          drainTimeout: duration.optional(),
          maxConnectionAge: duration.optional(),
        },
        { error: 'must be a mapping' },
      )
      .optional(),
    metrics: z
      .strictObject(
        {
          identities: z
            .number({ error: 'must be a whole number from 0 to 10000' })
            .int({ error: 'must be a whole number from 0 to 10000' })
            .min(0, { error: 'must be a whole number from 0 to 10000' })
            .max(10_000, { error: 'must be a whole number from 0 to 10000' })
            .optional(),
        },
        { error: 'must be a mapping with identities' },
      )
      .optional(),
    workers: workers.optional(),
  })
  .superRefine((c, ctx) => {
    if (ctx.issues.length > 0) return; // zod runs this even after an unknown key: the shape comes first
    const problem = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (!c.inbound && (!c.outbound || c.outbound.length === 0)) problem([], 'configure inbound, outbound or both');
    if (c.inbound && c.policy === undefined) problem(['policy'], 'is required with inbound (a policy file path or an inline policy)');
    const p = c.identity.provision;
    if (p?.token !== undefined && p.tokenFile !== undefined) problem(['identity', 'provision'], 'give token or tokenFile, not both');
    if (c.identity.recheckInterval !== undefined && c.identity.recheckInterval < 1000) problem(['identity', 'recheckInterval'], 'must be at least 1s');
    (c.credentials?.jwt ?? []).forEach((j, i) => {
      // The verifier's own rules (no none, no HS*, an audience, a known algorithm), worded for this file.
      try {
        new JwtVerifier([{ issuer: j.issuer, audiences: j.audiences, algorithms: j.algorithms, ...(j.scopeClaim !== undefined ? { scopeClaim: j.scopeClaim } : {}) }]);
      } catch (err) {
        const m = /^jwt\[0\]\.([A-Za-z]+)(?:\[(\d+)\])?: (.*)$/s.exec((err as Error).message);
        if (m === null) problem(['credentials', 'jwt', i], (err as Error).message);
        else problem(['credentials', 'jwt', i, m[1]!, ...(m[2] !== undefined ? [Number(m[2])] : [])], m[3]!);
      }
      if (c.credentials!.jwt!.findIndex((o) => o.issuer === j.issuer) < i) problem(['credentials', 'jwt', i, 'issuer'], `${j.issuer} is configured twice`);
      if (j.minRefetchInterval !== undefined && j.minRefetchInterval < 1000) problem(['credentials', 'jwt', i, 'minRefetchInterval'], 'must be at least 1s');
      if (j.refresh !== undefined && j.refresh < 1000) problem(['credentials', 'jwt', i, 'refresh'], 'must be at least 1s');
    });
    if (c.credentials?.hmac?.maxSkew !== undefined && c.credentials.hmac.maxSkew < 1000) problem(['credentials', 'hmac', 'maxSkew'], 'must be at least 1s');
  });

/** The sidecar config file: every refusal is a usage error (exit 2). */
export const SIDECAR_CONFIG_FILE = new ConfigFile(schema, {
  what: 'the config file',
  ifMissing: 'pass an existing file to --config',
  code: 'usage',
});

/** Validates an already-parsed YAML document; `source` names the file in messages and anchors relative paths. */
export function parseSidecarConfig(doc: unknown, source: string): SidecarConfig {
  return withDefaults(SIDECAR_CONFIG_FILE.validate(doc, source), source);
}

/**
 * Validates config text read earlier (SIDECAR_CONFIG_FILE.read): cluster workers parse the exact text the
 * primary read, so every worker (including one re-forked later, after the file was edited) runs the
 * configuration the primary validated at start.
 */
export function parseSidecarConfigText(text: string, path: string): SidecarConfig {
  return withDefaults(SIDECAR_CONFIG_FILE.parse(text, path), path);
}

/** The validated document as typed values: defaults filled in, paths resolved against the file's folder. */
function withDefaults(c: z.output<typeof schema>, source: string): SidecarConfig {
  const base = dirname(resolve(source));
  const config: SidecarConfig = {
    source,
    identity: { dir: resolve(base, c.identity.dir), recheckIntervalMs: c.identity.recheckInterval ?? DEFAULT_RECHECK_INTERVAL_MS },
    outbound: (c.outbound ?? []).map((o) => ({
      listen: o.listen,
      upstream: o.upstream,
      identity: o.identity,
      protocol: o.protocol ?? 'http',
      connectTimeoutMs: o.connectTimeout ?? DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: o.idleTimeout ?? DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS,
    })),
    admin: c.admin?.listen ?? parseHostPort(DEFAULT_ADMIN_LISTEN)!,
    log: { level: c.log?.level ?? 'info', allowed: c.log?.allowed ?? 'info' },
    limits: {
      handshakeTimeoutMs: c.limits?.handshakeTimeout ?? DEFAULT_LIMITS.handshakeTimeoutMs,
      headersTimeoutMs: c.limits?.headersTimeout ?? DEFAULT_LIMITS.headersTimeoutMs,
      requestTimeoutMs: c.limits?.requestTimeout ?? DEFAULT_LIMITS.requestTimeoutMs,
      idleTimeoutMs: c.limits?.idleTimeout ?? DEFAULT_LIMITS.idleTimeoutMs,
      maxConnections: c.limits?.maxConnections ?? DEFAULT_LIMITS.maxConnections,
      maxHeaderSize: c.limits?.maxHeaderSize ?? DEFAULT_LIMITS.maxHeaderSize,
      drainTimeoutMs: c.limits?.drainTimeout ?? DEFAULT_LIMITS.drainTimeoutMs,
      maxConnectionAgeMs: c.limits?.maxConnectionAge ?? DEFAULT_LIMITS.maxConnectionAgeMs,
    },
    metrics: { identities: c.metrics?.identities ?? DEFAULT_IDENTITY_LABELS },
    workers: c.workers ?? 1,
  };
  const p = c.identity.provision;
  if (p) {
    const provision: ProvisionConfig = { ca: p.ca, bundle: resolve(base, p.bundle) };
    if (p.token !== undefined) provision.token = p.token;
    if (p.tokenFile !== undefined) provision.tokenFile = resolve(base, p.tokenFile);
    if (p.spiffeId !== undefined) provision.spiffeId = p.spiffeId;
    if (p.keyType !== undefined) provision.keyType = p.keyType;
    if (p.ttl !== undefined) provision.ttlMs = p.ttl;
    config.identity.provision = provision;
  }
  if (c.inbound) {
    config.inbound = { listen: c.inbound.listen, app: c.inbound.app.app, protocol: c.inbound.app.protocol, clientCertificate: c.inbound.clientCertificate ?? 'require' };
  }
  if (c.credentials !== undefined) {
    const cr = c.credentials;
    const credentials: CredentialsConfig = {
      hmac: { maxSkewMs: cr.hmac?.maxSkew ?? DEFAULT_MAX_SKEW_MS, maxBodyBytes: cr.hmac?.maxBody ?? DEFAULT_HMAC_MAX_BODY },
      jwt: (cr.jwt ?? []).map((j) => {
        const issuer: JwtIssuerSettings = {
          issuer: j.issuer,
          audiences: j.audiences,
          algorithms: j.algorithms,
          jwks: j.jwks.kind === 'file' ? { kind: 'file', path: resolve(base, j.jwks.path) } : j.jwks,
          refreshMs: j.refresh ?? DEFAULT_JWKS_REFRESH_MS,
          minRefetchIntervalMs: j.minRefetchInterval ?? DEFAULT_JWKS_MIN_REFETCH_MS,
        };
        if (j.scopeClaim !== undefined) issuer.scopeClaim = j.scopeClaim;
        if (j.requireCertBound !== undefined) issuer.requireCertBound = j.requireCertBound;
        return issuer;
      }),
    };
    if (cr.apiKeys !== undefined) credentials.apiKeys = resolve(base, cr.apiKeys);
    config.credentials = credentials;
  }
  if (c.policy !== undefined) {
    config.policy = typeof c.policy === 'string' ? { kind: 'file', path: resolve(base, c.policy) } : { kind: 'inline', doc: c.policy };
  }
  return config;
}
