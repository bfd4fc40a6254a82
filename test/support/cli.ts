// Test helpers that drive real command lines: the compiled `meshward` binary and `openssl`, plus a
// directory snapshot so a test can prove that a refused command left a CA directory byte-for-byte unchanged.
import { spawn, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs as dist/test/support/cli.js. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const MESHWARD_BIN = join(REPO_ROOT, 'bin', 'meshward.js');

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Run as another user (tests run as root, and root reads every file regardless of its mode). */
  uid?: number;
  gid?: number;
  /** Kill the process after this long (a hung child must not hang the suite). */
  timeoutMs?: number;
}

/** Runs a program to completion and collects its exit code and output. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const spawnOpts: SpawnOptions = {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    };
    const child = spawn(file, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code: code ?? (signal ? 128 : -1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A program that never reads stdin (openssl verify) may exit before this write lands: the EPIPE that
    // follows is expected, and without a listener it would be thrown as an uncaught exception (seen under load).
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

/** Runs `node bin/meshward.js ARGS` (the compiled CLI, as a user runs it). */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [MESHWARD_BIN, ...args], opts);
}

/** Runs `openssl ARGS`. */
export function runOpenssl(args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return runCommand('openssl', args, opts);
}

/**
 * Every file, directory and symlink under `dir` with its type, mode and SHA-256 content hash, keyed by
 * relative path in sorted order: two snapshots are deepEqual exactly when nothing changed. `ignore`
 * skips paths, e.g. SQLite's `ca.db-shm` (a shared-memory index that even reads touch) while a test
 * process holds the database open; a closed CA directory has no such file.
 */
export function snapshotDir(dir: string, ignore?: RegExp): Record<string, string> {
  const entries: [string, string][] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const rel = relative(dir, path);
      if (ignore?.test(rel)) continue;
      const st = lstatSync(path);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        entries.push([`${rel}/`, `dir ${mode}`]);
        walk(path);
      } else if (st.isSymbolicLink()) {
        entries.push([rel, `symlink -> ${readlinkSync(path)}`]);
      } else {
        entries.push([rel, `file ${mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`]);
      }
    }
  };
  walk(dir);
  return Object.fromEntries(entries);
}
