// Small helpers for the credential step of the HTTP frontends: reading a request body whole (bounded), so
// an HMAC signature's Content-Digest can be checked before anything reaches the app, its SHA-256, and
// continuing with a value that is usually ready at once (an API key check) without a promise turn.
import { hash } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * A body with a declared length up to this many bytes is read into one buffer of that length, allocated
 * when its first bytes arrive; a longer one (up to credentials.hmac.maxBody) or one without a declared
 * length (chunked) is gathered chunk by chunk and joined at the end, so a client that declares a large
 * length and sends nothing holds no memory for it.
 */
export const PREALLOCATED_BODY_BYTES = 64 * 1024;

/** How a body read for an HMAC check ended (exactly one of these is called, once). */
export interface BodyCallbacks {
  /** The whole body (its trailers, if any, are the caller's to read: rawTrailers, or HTTP/2's 'trailers'). */
  body(body: Buffer): void;
  /** Longer than `max` bytes: nothing more is read (the stream is paused). */
  tooLarge(): void;
  /** The client broke off, the stream failed, or the body did not match its declared length. */
  failed(reason: string): void;
}

/**
 * Reads `stream`'s body whole, up to `max` bytes, and calls back (not a promise: the check that follows
 * runs in the same turn as the last chunk). `declaredLength`: the Content-Length when there is one; with
 * it, at most PREALLOCATED_BODY_BYTES, the bytes are copied into one buffer of that length as they arrive
 * instead of being listed and joined.
 */
export function readBody(stream: Readable & { complete?: boolean }, max: number, declaredLength: number | undefined, then: BodyCallbacks): void {
  if (declaredLength !== undefined && declaredLength > max) return then.tooLarge();
  const sized = declaredLength !== undefined && Number.isSafeInteger(declaredLength) && declaredLength >= 0 && declaredLength <= PREALLOCATED_BODY_BYTES;
  // allocUnsafe: every byte is written before the buffer is used (a short body fails instead); below 4 KiB it
  // is a slice of node's shared pool, so no ArrayBuffer of its own.
  let whole: Buffer | undefined;
  const chunks: Buffer[] = [];
  let length = 0;
  let settled = false;
  const finish = (): void => {
    settled = true;
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onAbort);
    stream.off('close', onAbort);
  };
  const onData = (chunk: Buffer): void => {
    if (sized) {
      // HTTP/1.1 never gets here with more than the declared length (llhttp stops the body there); an HTTP/2
      // client may send more DATA than its content-length says, and that body is not the one declared.
      if (length + chunk.length > declaredLength) {
        finish();
        stream.pause();
        then.failed('the request body is longer than its Content-Length');
        return;
      }
      if (length === 0 && chunk.length === declaredLength) {
        // The usual small body: all of it in one read. The chunk is the request's own (node allocates each
        // socket read afresh; nothing else holds it), so it is kept as it is instead of copied.
        whole = chunk;
        length = chunk.length;
        return;
      }
      whole ??= Buffer.allocUnsafe(declaredLength);
      chunk.copy(whole, length);
      length += chunk.length;
      return;
    }
    length += chunk.length;
    if (length > max) {
      finish();
      stream.pause();
      then.tooLarge();
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => {
    finish();
    // An HTTP/1.1 body cut short by a parse error ends the stream early: never treat that as the body.
    if (stream.complete === false) return then.failed('the request body was cut short');
    if (sized) {
      if (length !== declaredLength) return then.failed('the request body is shorter than its Content-Length');
      return then.body(whole ?? Buffer.alloc(0));
    }
    // An HTTP/2 body longer than PREALLOCATED_BODY_BYTES is held to its content-length here (HTTP/1.1's is by llhttp).
    if (declaredLength !== undefined && length !== declaredLength) return then.failed('the request body does not match its Content-Length');
    then.body(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
  };
  const onAbort = (): void => {
    if (settled) return;
    finish();
    then.failed('the client broke off the request');
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('error', onAbort);
  stream.once('close', onAbort);
}

/**
 * SHA-256 of `body` in a 32-byte Buffer from node's shared pool. hash(…, 'buffer') makes a Buffer with an
 * ArrayBuffer of its own in C++, which costs more than the digest of 1 KiB (3.0 against 1.2 µs measured in
 * process, node 20): the digest is taken as a latin1 string and written into the pooled Buffer instead.
 */
export function sha256Of(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(32);
  out.write(hash('sha256', body, 'binary'), 0, 'latin1'); // 'binary' is latin1 (the typings list only it)
  return out;
}

/** Calls `then` with the value now when it is not a promise, else when it settles. */
export function whenSettled<T>(value: T | Promise<T>, then: (v: T) => void, failed: (err: unknown) => void): void {
  if (value instanceof Promise) value.then(then, failed);
  else then(value);
}
