// Header rewriting between the client and the app. Requests: every incoming
// x-forwarded-client-cert and x-mesh-* header is dropped (any case, any count), hop-by-hop headers are
// dropped (Connection and what it names, Keep-Alive, Proxy-*, TE except "trailers" for HTTP/2 apps,
// Upgrade except on a real upgrade), then the sidecar's identity headers are added. HTTP/1.1 requests
// are also checked here for the framing shapes used for request smuggling that llhttp lets through.
// Names are only lower-cased when their first letter can start a name we act on, to keep the hot path lean.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/**
 * A value the sidecar makes (identity headers) as header text: its UTF-8 bytes, one character per byte.
 * Request heads are written as latin1, byte for byte what the client sent (node decodes header bytes and
 * HTTP/2 writes header strings that way too), so a Subject such as "CN=Müller" reaches the app as UTF-8
 * instead of being cut to one byte per character.
 */
export function headerText(value: string): string {
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/** The identity headers of one connection, precomputed once per (connection, policy), as header text (headerText). */
export interface IdentityHeaders {
  /** "" for a connection without a client certificate: then neither it nor clientId is sent. */
  xfcc: string;
  clientId: string;
  scopes: string;
  /** x-mesh-principal, on routes with `require` (the proofs' principals, space-separated). */
  principal?: string;
}

export function appendIdentity(out: string[], id: IdentityHeaders): void {
  if (id.xfcc !== '') out.push('x-forwarded-client-cert', id.xfcc, 'x-mesh-client-id', id.clientId);
  if (id.principal !== undefined) out.push('x-mesh-principal', id.principal);
  out.push('x-mesh-scopes', id.scopes, 'x-forwarded-proto', 'https');
}

export function setIdentity(out: OutgoingHttpHeaders, id: IdentityHeaders): void {
  if (id.xfcc !== '') {
    out['x-forwarded-client-cert'] = id.xfcc;
    out['x-mesh-client-id'] = id.clientId;
  }
  if (id.principal !== undefined) out['x-mesh-principal'] = id.principal;
  out['x-mesh-scopes'] = id.scopes;
  out['x-forwarded-proto'] = 'https';
}

/**
 * True for a request header that carries a credential of one of `kinds` (lower-case name and its value):
 * API keys (x-api-key, Bearer mwk_…, Basic), bearer tokens, HMAC signatures. The app never receives them.
 */
export function isCredentialHeader(lower: string, value: string, kinds: readonly string[]): boolean {
  switch (lower) {
    case 'x-api-key':
      return kinds.includes('apikey');
    case 'signature':
    case 'signature-input':
      return kinds.includes('hmac');
    case 'authorization': {
      const scheme = value.trimStart().slice(0, 7).toLowerCase();
      if (scheme === 'bearer ') return kinds.includes('jwt') || kinds.includes('apikey');
      return scheme.startsWith('basic ') && kinds.includes('apikey');
    }
  }
  return false;
}

/**
 * The request header fields the credential checks read, by lower-case name: a field sent once as its string,
 * a field sent on several lines as an array with one entry per line, as node's headersDistinct has them (a
 * second authorization or x-api-key line stays visible and is refused as ambiguous). Built straight from the raw header lines of HTTP/1.1 (req.rawHeaders) and HTTP/2
 * (the 'stream' event's rawHeaders): headersDistinct (and req.headers) build an object of every field on
 * first use, per request, and node's HTTP/2 headers object keeps only the first authorization line and
 * joins x-api-key lines with ", ". `all`: every field (an HMAC signature may cover any; HTTP/2
 * pseudo-headers are not fields and are left out); otherwise only authorization and x-api-key, all an API
 * key or a bearer token is read from.
 */
export function credentialHeaders(raw: readonly string[], all: boolean): Record<string, string | string[]> {
  // One line is kept as its string (RequestHeaders allows it, and every reader goes through headerValues or
  // checks for a string): an array per field was garbage per request, mostly for fields no check reads.
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Lengths of "authorization" and "x-api-key": the other names are skipped without lower-casing them.
    if (!all && name.length !== 13 && name.length !== 9) continue;
    if (name.charCodeAt(0) === 0x3a) continue; // an HTTP/2 pseudo-header (":path"): derived components name them
    const lower = name.toLowerCase();
    if (!all && lower !== 'authorization' && lower !== 'x-api-key') continue;
    const lines = out[lower];
    if (lines === undefined) out[lower] = raw[i + 1]!;
    else if (typeof lines === 'string') out[lower] = [lines, raw[i + 1]!];
    else lines.push(raw[i + 1]!);
  }
  return out;
}

/** Removes credential headers from flat [name, value, …] request headers (HTTP/1.1). */
export function stripCredentials(headers: string[], kinds: readonly string[]): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const name = headers[r]!;
    // Only names as long as x-api-key or signature (9), authorization (13), signature-input (15) are
    // lower-cased and looked at: every other name ("Host", "User-Agent") would be a new string per request.
    const n = name.length;
    if ((n === 9 || n === 13 || n === 15) && isCredentialHeader(name.toLowerCase(), headers[r + 1]!, kinds)) continue;
    headers[w++] = headers[r]!;
    headers[w++] = headers[r + 1]!;
  }
  headers.length = w;
}

/** Removes credential headers from an HTTP/2 header object (a copy the sidecar owns). */
export function stripCredentialFields(headers: OutgoingHttpHeaders, kinds: readonly string[]): void {
  for (const name of ['x-api-key', 'signature', 'signature-input', 'authorization']) {
    const v = headers[name];
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v.map(String) : [String(v)];
    const kept = values.filter((value) => !isCredentialHeader(name, value, kinds));
    if (kept.length === 0) delete headers[name];
    else headers[name] = kept.length === 1 ? kept[0]! : kept;
  }
}

/** What scanning an HTTP/1.1 request's raw headers found. */
export interface Http1RequestScan {
  /** The headers to forward, flat [name, value, …], without identity headers. */
  headers: string[];
  /** Why the request must be refused (400), when its framing or headers are ambiguous. */
  problem: string | undefined;
  host: string | undefined;
  /** The request has a body: Content-Length > 0 or chunked. */
  hasBody: boolean;
  chunked: boolean;
}

const enum Kind {
  Keep,
  Drop,
  Host,
  ContentLength,
  TransferEncoding,
  Connection,
  Te,
  Upgrade,
}

/**
 * The request trailer fields (raw name/value pairs from llhttp) an app may receive: what would be kept as
 * a header, minus what a trailer must not carry (RFC 9110 §6.5.1: framing, routing, authentication) and
 * the identity headers only the sidecar sets, which a client must not smuggle in after the body either.
 */
export function forwardableTrailers(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (requestKind(lower) !== Kind.Keep || TRAILER_FORBIDDEN.has(lower)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** An HTTP/2 request's trailers (node's object) as raw name/value pairs, pseudo-headers left out. */
export function http2TrailerPairs(t: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(t)) {
    if (name.startsWith(':')) continue;
    const v = t[name];
    if (Array.isArray(v)) for (const one of v) out.push(name, one);
    else if (v !== undefined) out.push(name, v);
  }
  return out;
}

/** Raw trailer pairs as the object an HTTP/2 stream sends (names lower-cased, repeated names as arrays). */
export function trailerObject(pairs: readonly string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i]!.toLowerCase();
    const prior = out[name];
    out[name] = prior === undefined ? pairs[i + 1]! : [...(Array.isArray(prior) ? prior : [prior]), pairs[i + 1]!];
  }
  return out;
}

const TRAILER_FORBIDDEN = new Set(['authorization', 'cookie', 'set-cookie', 'content-type', 'content-encoding', 'content-range', 'max-forwards', 'cache-control', 'expect', 'range']);

/** Classifies a lower-case request header name. */
function requestKind(lower: string): Kind {
  switch (lower) {
    case 'host':
      return Kind.Host;
    case 'content-length':
      return Kind.ContentLength;
    case 'transfer-encoding':
      return Kind.TransferEncoding;
    case 'connection':
      return Kind.Connection;
    case 'te':
      return Kind.Te;
    case 'upgrade':
      return Kind.Upgrade;
    case 'keep-alive':
    case 'trailer':
    case 'expect': // the sidecar already answered 100-continue itself
    case 'http2-settings':
    case 'x-forwarded-client-cert':
    case 'x-forwarded-proto':
      return Kind.Drop;
  }
  if (lower.startsWith('x-mesh-') || lower.startsWith('proxy-')) return Kind.Drop;
  return Kind.Keep;
}

/** True when a header name's first character may start a name requestKind() does not Keep. */
function mayMatter(first: number): boolean {
  // c C e E h H k K p P t T u U x X
  switch (first | 0x20) {
    case 0x63: case 0x65: case 0x68: case 0x6b: case 0x70: case 0x74: case 0x75: case 0x78:
      return true;
  }
  return false;
}

/**
 * Filters and checks the raw headers of an HTTP/1.1 request. `upgrade`: this is a real upgrade, keep
 * Upgrade and send Connection: Upgrade. `h2cApp`: the app speaks HTTP/2, keep "te: trailers".
 */
export function scanHttp1Request(raw: string[], upgrade: boolean, h2cApp: boolean): Http1RequestScan {
  const headers: string[] = [];
  let problem: string | undefined;
  let host: string | undefined;
  let hosts = 0;
  let lengths = 0;
  let encodings = 0;
  let chunked = false;
  let hasBody = false;
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (!mayMatter(name.charCodeAt(0))) {
      headers.push(name, value);
      continue;
    }
    switch (requestKind(name.toLowerCase())) {
      case Kind.Keep:
        headers.push(name, value);
        break;
      case Kind.Drop:
        break;
      case Kind.Host:
        hosts++;
        host = value;
        headers.push(name, value);
        break;
      case Kind.ContentLength:
        lengths++;
        if (value !== '0') hasBody = true;
        headers.push(name, value);
        break;
      case Kind.TransferEncoding:
        encodings++;
        if (value.trim().toLowerCase() !== 'chunked') {
          problem ??= `Transfer-Encoding ${JSON.stringify(value)} is not accepted: only "chunked" is`;
        }
        chunked = true;
        hasBody = true;
        // Kept for HTTP/1.1 apps so the body stays chunked whatever the method; HTTP/2 frames bodies itself.
        if (!h2cApp) headers.push('transfer-encoding', 'chunked');
        break;
      case Kind.Connection:
        connection = connection === undefined ? value : `${connection},${value}`;
        break;
      case Kind.Te:
        if (h2cApp && value.trim().toLowerCase() === 'trailers') headers.push('te', 'trailers');
        break;
      case Kind.Upgrade:
        if (upgrade) headers.push(name, value);
        break;
    }
  }
  if (hosts > 1) problem ??= 'more than one Host header';
  if (lengths > 1) problem ??= 'more than one Content-Length header';
  if (encodings > 1) problem ??= 'more than one Transfer-Encoding header';
  if (lengths > 0 && encodings > 0) problem ??= 'both Content-Length and Transfer-Encoding';
  if (connection !== undefined) dropNamedByConnection(headers, connection);
  if (upgrade) headers.push('connection', 'upgrade');
  return { headers, problem, host, hasBody, chunked };
}

/** Removes the headers a Connection header names (they are hop-by-hop too). */
function dropNamedByConnection(headers: string[], connection: string): void {
  let named: Set<string> | undefined;
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || t === 'upgrade') continue;
    (named ??= new Set()).add(t);
  }
  if (named === undefined) return;
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const name = headers[r]!;
    const lower = name.toLowerCase();
    if (named.has(lower) && lower !== 'host' && lower !== 'content-length' && lower !== 'transfer-encoding') continue;
    headers[w++] = name;
    headers[w++] = headers[r + 1]!;
  }
  headers.length = w;
}

/** Response headers that describe one hop and must not be copied to the client. */
function isHopByHopResponse(lower: string): boolean {
  switch (lower) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'te':
      return true;
  }
  return false;
}

/** An HTTP/1.1 app's response headers for an HTTP/1.1 client (node re-frames the body itself). */
export function http1ResponseHeaders(raw: string[]): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x63 || first === 0x6b || first === 0x70 || first === 0x74 || first === 0x75) {
      const lower = name.toLowerCase();
      if (lower === 'connection') connection = raw[i + 1];
      if (isHopByHopResponse(lower)) continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (connection !== undefined) dropNamedByConnection(out, connection);
  return out;
}

/** An HTTP/1.1 app's response headers for an HTTP/2 client. */
export function http1ResponseToHttp2(status: number, headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  const connection = headers['connection'];
  const named = typeof connection === 'string' ? new Set(connection.toLowerCase().split(',').map((t) => t.trim())) : undefined;
  for (const name in headers) {
    if (isHopByHopResponse(name) || name === 'proxy-authenticate' || named?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

/** Request header names an HTTP/2 client sends that never go to the app. */
function droppedFromHttp2(name: string): boolean {
  const first = name.charCodeAt(0);
  if (first === 0x3a) return true; // pseudo-headers are rebuilt
  if (first === 0x78) return name === 'x-forwarded-client-cert' || name === 'x-forwarded-proto' || name.startsWith('x-mesh-');
  if (first === 0x70) return name.startsWith('proxy-');
  return name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding' || name === 'upgrade' || name === 'te' || name === 'host' || name === 'http2-settings';
}

/** An HTTP/2 client's request headers for an HTTP/1.1 app (":authority" becomes Host). */
export function http2RequestToHttp1(headers: IncomingHttpHeaders, chunked: boolean): string[] {
  const out: string[] = [];
  const host = headers.host ?? headers[':authority'];
  if (host !== undefined) out.push('host', host);
  for (const name in headers) {
    if (droppedFromHttp2(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (chunked) out.push('transfer-encoding', 'chunked');
  return out;
}

/** An HTTP/2 client's request headers for an HTTP/2 app; `target` is the normalized :path. */
export function http2RequestToH2c(headers: IncomingHttpHeaders, target: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': headers[':method'],
    ':path': target,
    ':scheme': 'http',
    ':authority': headers[':authority'] ?? headers.host,
  };
  for (const name in headers) {
    if (droppedFromHttp2(name)) continue;
    out[name] = headers[name];
  }
  if (headers.te === 'trailers') out.te = 'trailers';
  return out;
}

/** Filtered HTTP/1.1 request headers (from scanHttp1Request) for an HTTP/2 app. */
export function http1RequestToH2c(method: string, target: string, scan: Http1RequestScan, fallbackAuthority: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': method,
    ':path': target,
    ':scheme': 'http',
    ':authority': scan.host ?? fallbackAuthority,
  };
  const h = scan.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!.toLowerCase();
    if (name === 'host' || name === 'transfer-encoding' || name === 'connection') continue;
    const prev = out[name];
    const value = h[i + 1]!;
    if (prev === undefined) out[name] = value;
    else if (name === 'cookie') out[name] = `${prev as string}; ${value}`;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev as string, value];
  }
  return out;
}

/** HTTP/2 response headers or trailers without pseudo-headers, for an HTTP/1.1 client. */
export function withoutPseudo(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
