// A real `meshward ca serve` process for the replica, admin and agent tests (and test/support/ca-fixture.ts): started with --store, its JSON log lines
// kept, its port read from the "listening" line (and with --admin the admin port from "admin_listening"),
// stopped (or killed) by the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { MESHWARD_BIN } from '../support/cli.js';

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** The --admin listener's port (0 without --admin). */
  adminPort: number;
  /** Everything the process wrote, stdout and stderr. */
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function startServeProcess(dir: string, store: string, extra: string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [MESHWARD_BIN, 'ca', 'serve', '--dir', dir, '--store', store, '--listen', '127.0.0.1:0',
    '--sign-rate', '100000', '--sign-burst', '100000', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  let port = 0;
  let adminPort = 0;
  const wantsAdmin = extra.includes('--admin');
  while (port === 0 || (wantsAdmin && adminPort === 0)) {
    const m = /"event":"listening"[^\n]*"port":(\d+)/.exec(out);
    const a = /"event":"admin_listening"[^\n]*"port":(\d+)/.exec(out);
    if (m) port = Number(m[1]);
    if (a) adminPort = Number(a[1]);
    if (port !== 0 && (!wantsAdmin || adminPort !== 0)) break;
    if (child.exitCode !== null) throw new Error(`ca serve exited ${child.exitCode}: ${out}`);
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ca serve did not listen within 60 s: ${out}`);
    } else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child, port, adminPort, exited,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
