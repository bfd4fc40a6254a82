// Runs a snippet of logging code in a child process whose stdout is a pipe nobody reads at first: the pipe
// (64 KiB) fills and the child's log writes are refused until the parent starts reading `readAfterMs` later.
// The snippet sees createLogger, flushLogs (src/sidecar/observe/log.ts) and requestLogFor (request-log.ts).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempDir } from './temp-dir.js';

const LOG_MODULE = fileURLToPath(new URL('../../src/sidecar/observe/log.js', import.meta.url));
const REQUEST_LOG_MODULE = fileURLToPath(new URL('../../src/sidecar/observe/request-log.js', import.meta.url));

/** Runs `body` as an ES module; resolves with its exit code, stdout and stderr once it exited. */
export function runLoggingChild(body: string, readAfterMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = tempDir();
  const script = dir.path('child.mjs');
  writeFileSync(script, `import { createLogger, flushLogs } from ${JSON.stringify(LOG_MODULE)};\nimport { requestLogFor } from ${JSON.stringify(REQUEST_LOG_MODULE)};\n${body}`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.pause();
  setTimeout(() => {
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stdout.resume();
  }, readAfterMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      dir.cleanup();
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}
