// Atomic file writes. A reader (a sidecar, OpenSSL, Kubernetes) must never see a half-written certificate
// or a new certificate beside an old key: write to a temporary file in the same folder, fsync, rename.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface FileToWrite {
  path: string;
  data: string | Buffer;
  /** 0o600 for private keys; 0o644 otherwise. */
  mode?: number;
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

function writeTemp(file: FileToWrite): string {
  const tmp = tempPathFor(file.path);
  const fd = openSync(tmp, 'wx', file.mode ?? 0o644);
  try {
    const buf = typeof file.data === 'string' ? Buffer.from(file.data) : file.data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  return tmp;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  }
}

/** Writes one file atomically (temp file + fsync + rename). */
export function writeFileAtomic(path: string, data: string | Buffer, mode?: number): void {
  writeFilesAtomic([{ path, data, mode }]);
}

/**
 * Writes several files so that each is replaced atomically and none is replaced unless all temp files
 * were written (a full disk leaves every old file intact). The renames themselves happen one after
 * another; callers that need the set swapped as one use the Kubernetes `..data` layout (agent/).
 */
export function writeFilesAtomic(files: FileToWrite[]): void {
  const temps: string[] = [];
  try {
    for (const f of files) {
      mkdirSync(dirname(f.path), { recursive: true });
      temps.push(writeTemp(f));
    }
  } catch (err) {
    for (const t of temps) rmSync(t, { force: true });
    throw err;
  }
  for (let i = 0; i < files.length; i++) renameSync(temps[i]!, files[i]!.path);
  for (const dir of new Set(files.map((f) => dirname(f.path)))) fsyncDir(dir);
}
