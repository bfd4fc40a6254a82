// A meshward child process for tests (`node bin/meshward.js ...`): its JSON log read as it comes (from
// stdout, or stderr for commands that log there), waits for a log line that fail at once when the process
// exits, and a stop() that sends SIGTERM and kills it if it does not exit in time (tests call it in `after`).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { MESHWARD_BIN } from './cli.js';
import { JsonLog, type LogLine } from './json-log.js';

export interface LoggedProcess {
  child: ChildProcess;
  /** The parsed log lines so far. */
  logs: LogLine[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<number | string>;
  /** Resolves with the first log line `pred` accepts; rejects when the process exits first or after timeoutMs. */
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends SIGTERM (or `signal`) and waits for the exit; kills after timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

export interface SpawnOptions {
  /** Where the JSON log goes (default stdout). */
  logStream?: 'stdout' | 'stderr';
  /** Default timeout of waitForLog (60 s). */
  timeoutMs?: number;
  /** ulimit -n for the child (bash sets it, then execs node). */
  maxOpenFiles?: number;
  /** Variables added to the child's environment (NODE_CLUSTER_SCHED_POLICY, say). */
  env?: Record<string, string>;
}

/** Starts `node bin/meshward.js ...args`. */
export function spawnMeshward(args: readonly string[], opts: SpawnOptions = {}): LoggedProcess {
  const argv = [MESHWARD_BIN, ...args];
  const how = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } };
  const child =
    opts.maxOpenFiles === undefined
      ? spawn(process.execPath, argv, how)
      : spawn('bash', ['-c', `ulimit -n ${opts.maxOpenFiles} && exec "$0" "$@"`, process.execPath, ...argv], how);
  const log = new JsonLog(opts.logStream === 'stderr' ? child.stderr! : child.stdout!);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve(code ?? signal ?? -1);
      log.changed();
    });
  });
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;

  const waitForLog = (pred: (l: LogLine) => boolean, what: string, timeoutMs = opts.timeoutMs ?? 60_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      let remove = () => {};
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`timed out waiting for ${what}; stderr: ${stderr.trim()}; last logs: ${JSON.stringify(log.lines.slice(-5))}`));
      }, timeoutMs);
      const check = () => {
        const found = log.lines.find(pred);
        if (found === undefined && !hasExited()) return;
        clearTimeout(timer);
        remove();
        if (found !== undefined) resolve(found);
        else reject(new Error(`the process exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${stderr.trim()}`));
      };
      remove = log.onChange(check);
      check();
    });

  return {
    child,
    logs: log.lines,
    stderr: () => stderr,
    exited,
    waitForLog,
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (hasExited()) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const v = await exited;
      clearTimeout(timer);
      return v;
    },
  };
}
