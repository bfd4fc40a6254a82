// HMAC-SHA256 (RFC 2104) of a string under a KeyObject, without an Hmac object per call: two one-shot
// crypto.hash() calls over preallocated buffers holding the key's inner and outer pads. In the sidecar, each
// createHmac() made a native Hmac object (a weak handle for the garbage collector) and an OpenSSL
// EVP_MAC fetch (a locked hash-table lookup); crypto.hash() (node 20.12+) does neither.
import { createHmac, hash, type KeyObject } from 'node:crypto';

const BLOCK = 64;
/** Longest signature base (in UTF-8 bytes, at most 3 per UTF-16 unit) hashed from the scratch buffer. */
const MAX_SCRATCH_BASE = 16 * 1024;

interface Pads {
  inner: Buffer;
  outer: Buffer;
}

/** The pads of each key, derived once per KeyObject (they live as long as the key set that holds it). */
const padsOf = new WeakMap<KeyObject, Pads>();
/** ipad ‖ message, written in place; outer pad ‖ inner digest likewise. One call at a time (synchronous). */
const scratch = Buffer.alloc(BLOCK + MAX_SCRATCH_BASE);
const outerScratch = Buffer.alloc(BLOCK + 32);
/**
 * Views of the scratch buffer by message length, made once each: crypto.hash takes a whole buffer, and a
 * Buffer object costs about 230 bytes of young generation, more than the Hmac object this replaces. At most
 * one per length up to MAX_SCRATCH_BASE, and only for lengths seen: a few MB at the very worst.
 */
const views: Buffer[] = [];

function pads(key: KeyObject): Pads {
  let p = padsOf.get(key);
  if (p !== undefined) return p;
  let k = key.export();
  if (k.length > BLOCK) k = hash('sha256', k, 'buffer');
  const inner = Buffer.alloc(BLOCK, 0x36);
  const outer = Buffer.alloc(BLOCK, 0x5c);
  for (let i = 0; i < k.length; i++) {
    inner[i]! ^= k[i]!;
    outer[i]! ^= k[i]!;
  }
  p = { inner, outer };
  padsOf.set(key, p);
  return p;
}

/**
 * HMAC-SHA256 of `message` (UTF-8, as Hmac#update encodes a string) under `key`, written into `out` (32
 * bytes): equal to createHmac's digest. The digests travel as latin1 strings (one byte per character: "binary" is latin1), not
 * Buffers, for the same reason as the views.
 */
export function hmacSha256Into(key: KeyObject, message: string, out: Buffer): Buffer {
  if (message.length * 3 > MAX_SCRATCH_BASE) {
    createHmac('sha256', key).update(message).digest().copy(out);
    return out;
  }
  const p = pads(key);
  p.inner.copy(scratch, 0);
  const n = scratch.write(message, BLOCK, 'utf8');
  const view = (views[n] ??= scratch.subarray(0, BLOCK + n));
  p.outer.copy(outerScratch, 0);
  outerScratch.write(hash('sha256', view, 'binary'), BLOCK, 'latin1');
  out.write(hash('sha256', outerScratch, 'binary'), 0, 'latin1');
  return out;
}

/** HMAC-SHA256 of `message` under `key`, in a new Buffer. */
export function hmacSha256(key: KeyObject, message: string): Buffer {
  return hmacSha256Into(key, message, Buffer.alloc(32));
}
