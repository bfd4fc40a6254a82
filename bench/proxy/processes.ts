// Processes the proxy benchmark starts, and what /proc says about them (CPU time, RSS).
// Every child is started in its own process group, pinned with taskset, and recorded in a pid file so
// that bench/proxy.sh can still stop it if this Node process dies without running its cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

/** Every core, as taskset's list ("0-1" here): for what is deliberately not pinned (the 2-worker case). */
export const ALL_CORES = `0-${Math.max(0, os.cpus().length - 1)}`;

export interface Tracked {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  exited: boolean;
  exitCode: number | null;
}

const tracked: Tracked[] = [];
let pidFile: string | undefined;

/** Where the pids of everything started are listed, one `pid name` a line, for the shell's trap. */
export function setPidFile(file: string): void {
  pidFile = file;
  fs.writeFileSync(file, '');
}

export interface StartOptions {
  core: number | string;         // taskset -c core (a number, or a list such as ALL_CORES)
  logFile: string;               // stdout and stderr
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts `command args` pinned to one core, in its own process group, output appended to logFile. */
export function start(name: string, command: string, args: string[], opts: StartOptions): Tracked {
  const log = fs.openSync(opts.logFile, 'a');
  const child = spawn('taskset', ['-c', String(opts.core), command, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const t: Tracked = { name, pid: child.pid, child, exited: false, exitCode: null };
  child.on('exit', (code, signal) => {
    t.exited = true;
    t.exitCode = code ?? (signal ? 128 : null);
  });
  tracked.push(t);
  if (pidFile) fs.appendFileSync(pidFile, `${child.pid} ${name}\n`);
  return t;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Freezes (SIGSTOP) every process group in `others` except `active`, so the measured proxy is really
 * alone on its core (an idle Node process still wakes for timers and file watching). Returns the thaw.
 */
export function aloneOnCore(others: readonly Tracked[], active: Tracked | undefined): () => void {
  const frozen = others.filter((t) => t !== active && !t.exited);
  for (const t of frozen) killGroup(t.pid, 'SIGSTOP');
  return () => {
    for (const t of frozen) killGroup(t.pid, 'SIGCONT');
  };
}

/** Stops one tracked process group: SIGTERM, then SIGKILL after graceMs. */
export async function stop(t: Tracked, graceMs = 3000): Promise<void> {
  if (!t.exited) {
    killGroup(t.pid, 'SIGTERM');
    killGroup(t.pid, 'SIGCONT'); // a frozen group acts on SIGTERM only once continued
  }
  const until = Date.now() + graceMs;
  while (!t.exited && Date.now() < until) await sleep(50);
  // The group may still hold children (nginx/haproxy workers) even when the leader is gone.
  killGroup(t.pid, 'SIGKILL');
}

/** Stops everything started, in reverse order. Safe to call twice. */
export async function stopAll(): Promise<void> {
  await Promise.all(tracked.splice(0).reverse().map((t) => stop(t)));
}

/** Synchronous last resort for process 'exit' handlers. */
export function killAllNow(): void {
  for (const t of tracked) killGroup(t.pid, 'SIGKILL');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface ProcStat { pid: number; ppid: number; ticks: number }

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    return { pid, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readStat(Number(entry));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The processes that serve connections: the workers when there are any (nginx, haproxy -W, cluster), else the root. */
export function servingProcesses(root: number): number[] {
  const tree = processTree(root);
  return tree.length > 1 ? tree.slice(1) : tree;
}

/** utime+stime of the whole tree in clock ticks (100 per second on Linux). */
export function cpuTicks(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0);
}

export const TICKS_PER_SECOND = 100;

/** Resident set size of one process in kB (0 when it is gone). */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * One process's RSS split in MB (/proc/PID/smaps_rollup): pages backed by files (the program's binary
 * and libraries, shared with every process that maps them) and anonymous ones (its heaps, malloc's and
 * V8's). Undefined when the process is gone.
 */
export function rssSplitMb(pid: number): { fileBacked: number; anonymous: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { fileBacked: (kb('Rss') - kb('Anonymous')) / 1024, anonymous: kb('Anonymous') / 1024 };
  } catch {
    return undefined;
  }
}

/** The largest RSS among the serving processes, in MB: the per-worker figure the targets speak of. */
export function workerRssMb(root: number): number {
  return Math.max(0, ...servingProcesses(root).map(rssKb)) / 1024;
}

/** Samples workerRssMb every intervalMs until stopped; returns the maximum seen. */
export function sampleRss(root: number, intervalMs = 250): () => number {
  let max = workerRssMb(root);
  const timer = setInterval(() => {
    max = Math.max(max, workerRssMb(root));
  }, intervalMs);
  return () => {
    clearInterval(timer);
    return Math.max(max, workerRssMb(root));
  };
}

/** Resolves when something accepts TCP connections on host:port, rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process exited before listening on port ${port}`);
    if (Date.now() > until) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}
