// Temporary directories for tests, in one shape: `const t = tempDir()`, files go under t.dir (or
// t.path('a', 'b')), and `t.cleanup()` (in `after`) removes the whole tree, even when it is half-written.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  /** The directory, created empty under the system's temporary folder. */
  readonly dir: string;
  /** join(dir, ...parts). */
  path(...parts: string[]): string;
  /** Removes the directory and everything in it; safe to call twice. */
  cleanup(): void;
}

/** A fresh directory named `<prefix>XXXXXX` under os.tmpdir(). */
export function tempDir(prefix = 'meshward-'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    path: (...parts) => join(dir, ...parts),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
