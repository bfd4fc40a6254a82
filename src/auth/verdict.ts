// What every credential check in auth/ takes and returns. The sidecar hands in one neutral request record
// (headers, raw target, body digest, the mTLS peer) and gets back a typed verdict: accepted with a principal
// and scopes, or refused with a reason from a closed set (bounded metric labels) and the
// `WWW-Authenticate` value to send with the 401 (docs/api-credentials.md, "Refusals").

/** The credential kinds a route may require besides mtls (docs/api-credentials.md). */
export type CredentialKind = 'apikey' | 'hmac' | 'jwt';

/**
 * Every reason a credential is refused. Closed: the sidecar uses these as metric label values and can
 * pre-register them. The sentence in `Refused.message` says the specifics.
 */
export const REFUSAL_REASONS = [
  'missing', // no credential of this kind in the request
  'malformed', // present but not parseable (bad key format, bad structured field, bad JWT encoding)
  'ambiguous', // several credentials of the same kind in one request
  'in_query', // a credential in the URL query string (URLs end up in logs)
  'basic_password', // HTTP Basic with a password, or a username that is not an API key
  'checksum', // an API key whose CRC32 checksum does not match (a typo or a truncated copy)
  'unknown_key', // no such API key id / HMAC keyid / JWT kid
  'bad_secret', // the API key's secret or the HMAC signature does not match
  'bad_signature', // a JWT signature that does not verify
  'rotated', // the old secret of a rotated key, after its grace period ended
  'revoked',
  'expired', // API key past its expiry, JWT exp, HMAC `expires`
  'not_yet_valid', // JWT nbf/iat in the future
  'clock_skew', // HMAC `created` outside ±maxSkew of the sidecar's clock
  'binding', // boundTo identity / cnf.x5t#S256 does not match the mTLS peer
  'not_covered', // an HMAC signature that leaves out a component that must be signed
  'digest_mismatch', // Content-Digest absent, unusable or not the body's SHA-256
  'replay', // an HMAC signature seen before inside the window
  'replay_cache_full', // the replay cache is full: refused rather than risk accepting a replay
  'algorithm', // an algorithm outside the allow-list (alg none, HS* against a JWKS, ...)
  'forbidden_header', // a JWT header naming its own key source (jku, x5u, jwk, x5c) or an unknown crit
  'issuer', // JWT iss unknown
  'audience', // JWT aud missing or not one of the configured audiences
  'claims', // a required JWT claim missing or of the wrong type (exp, sub, the scope claim)
  'keys_unavailable', // no JWKS loaded yet for the token's issuer
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface Accepted {
  ok: true;
  kind: CredentialKind;
  /** For x-mesh-principal: `apikey:<id>` (API key and HMAC) or `jwt:<iss>#<sub>`. */
  principal: string;
  scopes: readonly string[];
  /** The API key id (apikey, hmac): audit lines and per-key rate limits name it, never the key. */
  keyId?: string;
  /** The key's own rate limit (key file rps/burst). */
  limit?: { rps: number; burst: number };
  /** hmac only: remember this in the replay cache shared by every worker; a second sighting is a replay. */
  replayKey?: string;
  /** hmac only: the verified signature's `created` (unix seconds): the replay cache keeps it until created + maxSkew. */
  replayCreated?: number;
}

export interface Refused {
  ok: false;
  kind: CredentialKind;
  reason: RefusalReason;
  /** One sentence for logs and the JSON body. Never contains a key, secret or token. */
  message: string;
  /** The `WWW-Authenticate` header value for the 401. */
  wwwAuthenticate: string;
  /** When known (audit lines name the key id of a refused key too). */
  keyId?: string;
}

export type AuthVerdict = Accepted | Refused;

/**
 * Header fields by lowercase name. An array holds one entry per field line, as Node's
 * `req.headersDistinct` gives them. Build it from the raw header lines (HTTP/1.1 rawHeaders, the HTTP/2
 * 'stream' event's rawHeaders), never from `req.headers` or the HTTP/2 headers object: Node keeps only the
 * first of duplicate `authorization` lines there and joins x-api-key lines with ", ", which would hide a
 * second credential.
 */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The mTLS caller, when the connection has a verified client certificate. */
export interface Peer {
  spiffeId?: string;
  /** SHA-256 of the client certificate's DER (what x-forwarded-client-cert's Hash= shows), for RFC 8705. */
  certificateSha256?: Buffer;
}

/** One request as the checks see it: nothing here is read from a socket by auth/. */
export interface AuthRequest {
  method: string;
  /** "https" behind the sidecar's TLS listener. */
  scheme: string;
  /** The Host header (HTTP/1.1) or :authority (HTTP/2), as received. */
  authority: string;
  /** The raw path of the request target, before the sidecar's normalization ("" counts as "/"). */
  path: string;
  /** The raw query without "?"; undefined when the target has no "?". */
  query?: string;
  headers: RequestHeaders;
  /** Present when the request has a body: the SHA-256 of its bytes, computed by the sidecar. */
  body?: { sha256: Buffer };
  peer?: Peer;
}

/**
 * The refusal sentence for a request with more than one Authorization field line. Authorization holds one
 * credential (RFC 9110 §11.6.2, not a list): a second line, whatever its scheme, makes it unclear which one
 * the app would act on, so routes that read it refuse the request as ambiguous.
 */
export const SEVERAL_AUTHORIZATION = 'several authorization header fields in one request: send exactly one';

/** Every field line of header `name` (lowercase), in order. */
export function headerValues(headers: RequestHeaders, name: string): readonly string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : v;
}

/** The scheme each kind names in WWW-Authenticate (docs/api-credentials.md, "Refusals"). */
const SCHEMES: Record<CredentialKind, string> = { apikey: 'ApiKey', hmac: 'Signature', jwt: 'Bearer' };
export const REALM = 'meshward';

/** RFC 6750 §3: error and error_description hold %x20-21 / %x23-5B / %x5D-7E only. */
function quotable(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

/** The error code put in WWW-Authenticate for a refusal of `kind` (RFC 6750 for Bearer). */
function errorCode(kind: CredentialKind, reason: RefusalReason): string {
  if (kind === 'jwt') return reason === 'ambiguous' || reason === 'in_query' ? 'invalid_request' : 'invalid_token';
  if (kind === 'hmac') return 'invalid_signature';
  return reason === 'ambiguous' || reason === 'in_query' || reason === 'basic_password' ? 'invalid_request' : 'invalid_key';
}

export function wwwAuthenticate(kind: CredentialKind, reason: RefusalReason, message: string): string {
  const realm = `${SCHEMES[kind]} realm="${REALM}"`;
  // RFC 6750 §3.1: a request without any credential gets the challenge without an error code.
  if (reason === 'missing') return realm;
  return `${realm}, error="${errorCode(kind, reason)}", error_description="${quotable(message)}"`;
}

export function refuse(kind: CredentialKind, reason: RefusalReason, message: string, keyId?: string): Refused {
  const refused: Refused = { ok: false, kind, reason, message, wwwAuthenticate: wwwAuthenticate(kind, reason, message) };
  if (keyId !== undefined) refused.keyId = keyId;
  return refused;
}
