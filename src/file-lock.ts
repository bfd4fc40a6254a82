// A lock file beside a file that several processes rewrite (read, change, write back): `F.lock`, created
// with O_EXCL, holding who took it. Without it two `meshward apikey create` runs at once would each write
// their own version and one key would be lost. A lock left by a process that died (same host, pid gone, or
// older than a minute for an operation that takes milliseconds) is broken, by one waiter at a time (a second
// lock, `F.lock.break`, taken the same way), so two waiters can never both "break" the lock one of them just took.
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshwardError } from './errors.js';

export interface LockOptions {
  /** How long to wait for another holder (default 30 s). */
  timeoutMs?: number;
  /** A lock older than this is stale whoever holds it (default 60 s). */
  staleMs?: number;
}

interface Holder {
  pid: number;
  host: string;
  nonce: string;
  since: number;
}

/** Creates `path` exclusively with `content`; false when it exists. */
function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new MeshwardError('unavailable', `cannot create the lock file ${path}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function ageMs(path: string, now: number): number {
  try {
    return now - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string | undefined): Holder | undefined {
  try {
    const h = JSON.parse(text ?? '') as Holder;
    return typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.nonce === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

function isStale(lockPath: string, text: string | undefined, staleMs: number, now: number): boolean {
  if (ageMs(lockPath, now) > staleMs) return true;
  const holder = parseHolder(text);
  // An unreadable or half-written lock is judged by its age alone (a writer needs microseconds).
  if (holder === undefined) return ageMs(lockPath, now) > 5_000;
  return holder.host === hostname() && !processAlive(holder.pid);
}

/** Removes the stale lock whose content was `seen`, unless someone replaced it meanwhile. */
function breakStaleLock(lockPath: string, seen: string | undefined): void {
  const breakPath = `${lockPath}.break`;
  if (!createExclusive(breakPath, String(process.pid))) {
    // A breaker that died holding this: it held it for microseconds, so an old one is abandoned.
    if (ageMs(breakPath, Date.now()) > 10_000) rmSync(breakPath, { force: true });
    return;
  }
  try {
    if (readText(lockPath) === seen) rmSync(lockPath, { force: true });
  } finally {
    rmSync(breakPath, { force: true });
  }
}

/** Runs `fn` holding `path`.lock; waits for another holder up to timeoutMs, then fails with a clear error. */
export async function withFileLock<T>(path: string, fn: () => T | Promise<T>, options: LockOptions = {}): Promise<T> {
  const lockPath = `${path}.lock`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const staleMs = options.staleMs ?? 60_000;
  const me: Holder = { pid: process.pid, host: hostname(), nonce: randomBytes(12).toString('hex'), since: Date.now() };
  const content = JSON.stringify(me);
  const deadline = Date.now() + timeoutMs;
  while (!createExclusive(lockPath, content)) {
    const seen = readText(lockPath);
    if (seen !== undefined && isStale(lockPath, seen, staleMs, Date.now())) {
      breakStaleLock(lockPath, seen);
      continue;
    }
    if (Date.now() > deadline) {
      const holder = parseHolder(seen);
      const who = holder ? `process ${holder.pid} on ${holder.host} since ${new Date(holder.since).toISOString()}` : 'another process';
      throw new MeshwardError('unavailable', `${path} is locked by ${who}: if no meshward is writing it, remove ${lockPath}`);
    }
    await sleep(5 + Math.floor(Math.random() * 20));
  }
  try {
    return await fn();
  } finally {
    if (readText(lockPath) === content) rmSync(lockPath, { force: true });
  }
}
