// A response from an http:// app, read straight off a pooled socket by a small strict HTTP/1.1 response
// parser (status line, headers, Content-Length / chunked / close-delimited bodies, trailers). The app is
// local and trusted to speak HTTP, but anything ambiguous (obs-fold, bare CR/LF, conflicting lengths,
// bad chunk sizes) is still an error, never a guess, and marks the socket as not reusable.
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';

/** The body of the response: readable with backpressure (the parser pauses the socket). */
export class UpstreamResponse extends Readable {
  statusCode = 0;
  statusMessage = '';
  /** Flat [name, value, …] as the app sent them. */
  rawHeaders: string[] = [];
  rawTrailers: string[] = [];
  /** True once the whole body was received. */
  complete = false;
  /**
   * The whole body, when it arrived with the head (Content-Length, one read): then the stream itself is
   * never used, the consumer writes this buffer instead of piping.
   */
  body: Buffer | undefined;
  private cachedHeaders: IncomingHttpHeaders | undefined;

  constructor(private readonly wantMore: () => void) {
    super();
  }

  override _read(): void {
    this.wantMore();
  }

  /** Headers with lower-case names (set-cookie as an array, other repeats joined with ", "). */
  get headers(): IncomingHttpHeaders {
    if (this.cachedHeaders !== undefined) return this.cachedHeaders;
    const out: IncomingHttpHeaders = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const prev = out[name];
      if (name === 'set-cookie') (out[name] ??= []).push(value);
      else out[name] = prev === undefined ? value : `${prev as string}, ${value}`;
    }
    this.cachedHeaders = out;
    return out;
  }
}

/** How the body of a response is framed. */
export const enum Framing {
  None,
  Length,
  Chunked,
  UntilClose,
}

export interface ParsedHead {
  status: number;
  message: string;
  raw: string[];
  framing: Framing;
  length: number;
  /** The connection may carry another request afterwards. */
  keepAlive: boolean;
  /** The app's `Keep-Alive: timeout=N` in ms (how long it keeps the idle connection open); -1 when not given. */
  keepAliveTimeoutMs: number;
}

/** `timeout=N` in a Keep-Alive header value (RFC 2068 19.7.1.1, sent by node's http server and others). */
const KEEP_ALIVE_TIMEOUT = /(?:^|,)\s*timeout\s*=\s*(\d{1,9})\s*(?:,|$)/i;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

/** Parses a response head (without the final CRLFCRLF); a string is the reason it is malformed. */
export function parseResponseHead(text: string, method: string): ParsedHead | string {
  const lines = text.split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (m === null) return `malformed status line ${JSON.stringify(lines[0]!.slice(0, 80))}`;
  const status = Number(m[2]);
  let keepAlive = m[1] === '1';
  const raw: string[] = [];
  let length = -1;
  let keepAliveTimeoutMs = -1;
  let chunked = false;
  let encoded = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return `malformed header line ${JSON.stringify(line.slice(0, 80))}`;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return `malformed header name ${JSON.stringify(name.slice(0, 80))}`; // also obs-fold
    const value = line.slice(colon + 1).trim();
    if (value.includes('\n') || value.includes('\r') || value.includes('\0')) return `header ${name} holds a control character`;
    raw.push(name, value);
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x6b && name.length === 10 && name.toLowerCase() === 'keep-alive') {
      const t = KEEP_ALIVE_TIMEOUT.exec(value);
      if (t !== null) keepAliveTimeoutMs = Number(t[1]) * 1000;
    } else if (first === 0x63 || first === 0x74) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!DIGITS.test(value)) return `bad Content-Length ${JSON.stringify(value)}`;
        const n = Number(value);
        if (length !== -1 && length !== n) return 'two different Content-Length headers';
        length = n;
      } else if (lower === 'transfer-encoding') {
        encoded = true;
        const codings = value.toLowerCase().split(',');
        chunked = codings[codings.length - 1]!.trim() === 'chunked';
      } else if (lower === 'connection') {
        if (/(^|,)\s*close\s*(,|$)/i.test(value)) keepAlive = false;
        else if (/(^|,)\s*keep-alive\s*(,|$)/i.test(value)) keepAlive = true;
      }
    }
  }
  let framing: Framing;
  if (method === 'HEAD' || status === 204 || status === 304 || status < 200) framing = Framing.None;
  else if (encoded) {
    framing = chunked ? Framing.Chunked : Framing.UntilClose;
    // Transfer-Encoding with Content-Length: the length is ignored (RFC 9112 6.3) and the connection is not reused.
    if (length !== -1 || !chunked) keepAlive = false;
  } else if (length !== -1) framing = Framing.Length;
  else {
    framing = Framing.UntilClose;
    keepAlive = false;
  }
  return { status, message: m[3] ?? '', raw, framing, length: length === -1 ? 0 : length, keepAlive, keepAliveTimeoutMs };
}
