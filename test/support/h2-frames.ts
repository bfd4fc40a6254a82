// A small HTTP/2 frame writer and reader over TLS, for tests that must send exact frame shapes a real
// client library would never produce (a header block that never ends, RST_STREAM right after HEADERS,
// SETTINGS or PING without reading the ACKs, a request body that stalls): frames built byte by byte
// (RFC 9113 §4.1), HPACK literals without Huffman coding (RFC 7541 §6.2.2), and the frames the server
// sent back parsed into type, flags, stream and payload.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type tls from 'node:tls';
import { closesWithin, tlsConnect, type ClientTls } from '../adversarial/harness.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4, ACK: 0x1 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK literal header field without indexing, new name (RFC 7541 §6.2.2), lengths < 127. */
export function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** HPACK integer with an N-bit prefix and the given first-byte flags. */
export function hpackInt(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

/** A GET for `path`: :method GET (static 2), :scheme https (7), :path literal, :authority literal. */
export function requestBlock(path: string): Buffer {
  return Buffer.concat([Buffer.from([0x82, 0x87]), Buffer.from([0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 9]), Buffer.from('localhost')]);
}

/** Bytes the server sent on a raw h2 socket, parsed into frame types (for GOAWAY detection). */
export function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  let off = 0;
  while (off + 9 <= bytes.length) {
    const len = bytes.readUIntBE(off, 3);
    types.push(bytes[off + 3]!);
    off += 9 + len;
  }
  return types;
}

/** Whether the kernel still has an established TCP connection from 127.0.0.1:localPort (ss). */
export function establishedFrom(localPort: number): boolean {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${localPort} )`], { encoding: 'utf8' });
  return out.trim().length > 0;
}

export interface RawH2 {
  socket: tls.TLSSocket;
  received: Buffer[];
  closed: Promise<boolean>;
}

export async function rawH2(rig: { port: number; client: ClientTls }, read = true): Promise<RawH2> {
  const socket = await tlsConnect(rig.port, rig.client, ['h2']);
  assert.equal(socket.alpnProtocol, 'h2');
  socket.on('error', () => {});
  const received: Buffer[] = [];
  if (read) socket.on('data', (c: Buffer) => received.push(c));
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  return { socket, received, closed: closesWithin(socket, 20_000) };
}

/** Writes `count` frames made by `make(i)` in batches, stopping early when the socket closes. */
export async function flood(socket: tls.TLSSocket, count: number, make: (i: number) => Buffer): Promise<number> {
  let sent = 0;
  const batch = 500;
  while (sent < count && !socket.destroyed) {
    const parts: Buffer[] = [];
    for (let i = 0; i < batch && sent < count; i++, sent++) parts.push(make(sent));
    const ok = socket.write(Buffer.concat(parts));
    if (!ok) {
      const drained = await Promise.race([
        new Promise<boolean>((r) => socket.once('drain', () => r(true))),
        new Promise<boolean>((r) => socket.once('close', () => r(false))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!drained) break;
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  return sent;
}


export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** The complete frames in `bytes` (what the server sent on a raw socket). */
export function parseFrames(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  let off = 0;
  while (off + 9 <= bytes.length) {
    const len = bytes.readUIntBE(off, 3);
    if (off + 9 + len > bytes.length) break;
    out.push({ type: bytes[off + 3]!, flags: bytes[off + 4]!, stream: bytes.readUInt32BE(off + 5) & 0x7fffffff, payload: bytes.subarray(off + 9, off + 9 + len) });
    off += 9 + len;
  }
  return out;
}

/** HPACK literal header field without indexing, new name, any length (RFC 7541 §6.2.2, no Huffman). */
export function header(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v]);
}

/** The error code of the first GOAWAY among `frames`, or undefined when there is none. */
export function goawayCode(frames: Frame[]): number | undefined {
  const g = frames.find((f) => f.type === FRAME.GOAWAY);
  return g === undefined ? undefined : g.payload.readUInt32BE(4);
}

/** The RST_STREAM error code the server sent for `stream`, or undefined. */
export function resetCode(frames: Frame[], stream: number): number | undefined {
  const r = frames.find((f) => f.type === FRAME.RST_STREAM && f.stream === stream);
  return r === undefined ? undefined : r.payload.readUInt32BE(0);
}

/** A request header block: :method (literal), :scheme https, :path, :authority localhost, then `extra`. */
export function requestHeaders(method: string, path: string, extra: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([header(':method', method), Buffer.from([0x87]), header(':path', path), header(':authority', 'localhost'), extra]);
}

/** Polls the frames received on `c` until `pred` holds for them; fails after timeoutMs. */
export async function framesUntil(c: RawH2, what: string, pred: (frames: Frame[]) => boolean, timeoutMs = 20_000): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frames = parseFrames(Buffer.concat(c.received));
    if (pred(frames)) return frames;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frame types seen: ${frames.map((f) => f.type).join(',')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The DATA payload the server sent on `stream`, as text. */
export function dataText(frames: Frame[], stream: number): string {
  return Buffer.concat(frames.filter((f) => f.type === FRAME.DATA && f.stream === stream).map((f) => f.payload)).toString();
}

/** Waits for the server's SETTINGS and acknowledges them, as a real client does: only then does the server apply its own limits. */
export async function ackSettings(c: RawH2): Promise<void> {
  await framesUntil(c, 'the server SETTINGS', (fs) => fs.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0));
  c.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
}
