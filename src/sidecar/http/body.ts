// Small helpers for the credential step of the HTTP frontends: reading a request body whole (bounded), so
// an HMAC signature's Content-Digest can be checked before anything reaches the app, and continuing with a
// value that is usually ready at once (an API key check) without a promise turn.
import type { Readable } from 'node:stream';

/**
 * The whole body, or undefined when it is longer than `max` bytes (nothing more is read then). Rejects
 * when the client broke off before the end.
 */
export function readBody(stream: Readable & { complete?: boolean }, max: number, declaredLength?: number): Promise<Buffer | undefined> {
  if (declaredLength !== undefined && declaredLength > max) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > max) {
        cleanup();
        stream.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      // An HTTP/1.1 body cut short by a parse error ends the stream early: never treat that as the body.
      if (stream.complete === false) reject(new Error('the request body was cut short'));
      else resolve(Buffer.concat(chunks, length));
    };
    const onAbort = (): void => {
      cleanup();
      reject(new Error('the client broke off the request'));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onAbort);
      stream.off('close', onAbort);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onAbort);
    stream.once('close', onAbort);
  });
}

/** Calls `then` with the value now when it is not a promise, else when it settles. */
export function whenSettled<T>(value: T | Promise<T>, then: (v: T) => void, failed: (err: unknown) => void): void {
  if (value instanceof Promise) value.then(then, failed);
  else then(value);
}
