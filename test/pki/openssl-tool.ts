// Runs the real openssl binary for the PKI tests and keeps their temp directories tidy.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshward-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
