// Runs the real openssl binary for the PKI tests and keeps their temp directories tidy.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function openssl(args: string[], input?: string | Buffer): ToolResult {
  const r = spawnSync('openssl', args, { input, timeout: 30_000, encoding: 'buffer' });
  return { status: r.status, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/** Temporary folders have one shape across the tests (test/support/temp-dir.ts). */
import { tempDir } from '../support/temp-dir.js';
export { tempDir };
