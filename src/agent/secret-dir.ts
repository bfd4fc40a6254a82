// The Kubernetes Secret volume layout, written the way the kubelet writes it (atomic_writer.go):
//
//   O/..2026_11_27_12_00_00.123456789/{tls.crt,tls.key,ca.crt}   one folder per generation
//   O/..data -> ..2026_11_27_12_00_00.123456789                   swapped with ONE rename(2)
//   O/tls.crt -> ..data/tls.crt   (and tls.key, ca.crt)             stable names, never rewritten
//
// A reader that opens O/tls.crt and O/tls.key resolves `..data` at each open; one that resolves `..data`
// once (realpath) and reads both files from that folder always gets a matching pair, because a generation
// folder is never modified after the swap. The folder replaced by a swap is kept until the next swap (one
// generation of grace for readers that resolved it just before), older ones are removed.
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const DATA_LINK = '..data';
const DATA_TMP_LINK = '..data_tmp';
const GENERATION = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{9}$/;

export interface SecretFile { name: string; data: string | Buffer; mode: number }

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN` (UTC); the nanoseconds come from the ms plus a per-process counter. */
export function generationName(now: Date, sequence: number): string {
  const nanos = now.getUTCMilliseconds() * 1_000_000 + (sequence % 1_000_000);
  return `..${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}.${pad(nanos, 9)}`;
}

let sequence = 0;

function writeDurable(path: string, data: string | Buffer, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch {
    // Some file systems refuse fsync on a directory; rename is atomic regardless.
  }
}

function isSymlinkTo(path: string, target: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink() && readlinkSync(path) === target;
  } catch {
    return false;
  }
}

/** Points `path` at `target` atomically (temp symlink + rename), replacing whatever was there. */
function replaceWithSymlink(dir: string, name: string, target: string): void {
  const path = join(dir, name);
  if (isSymlinkTo(path, target)) return;
  const tmp = join(dir, `.${name}.${process.pid}.${sequence++}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
}

/**
 * Writes a new generation holding exactly `files` and swaps `..data` to it. Returns the generation
 * folder's name. `now` names the folder (the caller's clock).
 */
export function writeSecretFiles(dir: string, files: SecretFile[], now: Date): string {
  mkdirSync(dir, { recursive: true });
  let generation = generationName(now, sequence++);
  while (existsEntry(join(dir, generation))) generation = generationName(now, sequence++);
  const genPath = join(dir, generation);
  mkdirSync(genPath, { mode: 0o755 });
  try {
    for (const f of files) writeDurable(join(genPath, f.name), f.data, f.mode);
    fsyncDir(genPath);
  } catch (err) {
    rmSync(genPath, { recursive: true, force: true });
    throw err;
  }
  const previous = currentGeneration(dir);
  // The swap: one rename(2) of a fresh symlink over ..data.
  const tmp = join(dir, DATA_TMP_LINK);
  rmSync(tmp, { force: true });
  symlinkSync(generation, tmp);
  renameSync(tmp, join(dir, DATA_LINK));
  for (const f of files) replaceWithSymlink(dir, f.name, `${DATA_LINK}/${f.name}`);
  fsyncDir(dir);
  removeOldGenerations(dir, new Set([generation, previous ?? '']));
  return generation;
}

function existsEntry(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The generation folder `..data` points at, or undefined when there is none. */
export function currentGeneration(dir: string): string | undefined {
  try {
    const target = readlinkSync(join(dir, DATA_LINK));
    return GENERATION.test(target) ? target : undefined;
  } catch {
    return undefined;
  }
}

function removeOldGenerations(dir: string, keep: Set<string>): void {
  for (const name of readdirSync(dir)) {
    if (GENERATION.test(name) && !keep.has(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Reads named files of one generation (resolving `..data` once, so they belong together), or the plain
 * files when the folder was written by something else. Undefined when a file is missing.
 */
export function readSecretFiles(dir: string, names: string[]): Map<string, Buffer> | undefined {
  const generation = currentGeneration(dir);
  const base = generation ? join(dir, generation) : dir;
  const out = new Map<string, Buffer>();
  try {
    for (const name of names) out.set(name, readFileSync(join(base, name)));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  return out;
}
