// Private key files that other users can read. meshward writes keys 0600, but a copied file, a restored
// backup or a Kubernetes Secret mounted with its default mode 0644 may not be: the CA and the sidecar
// then keep working (refusing would turn a permissions slip into an outage) and say so in a warning.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface LooseKeyFile {
  path: string;
  /** The permission bits, e.g. "0644". */
  mode: string;
}

/** The files among `paths` (symlinks followed) that the group or others may read or write; missing files are skipped. */
export function looseKeyFiles(paths: readonly string[]): LooseKeyFile[] {
  const loose: LooseKeyFile[] = [];
  for (const path of paths) {
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      continue; // missing or unreadable: whoever reads the key reports that
    }
    if ((mode & 0o077) !== 0) loose.push({ path, mode: `0${mode.toString(8).padStart(3, '0')}` });
  }
  return loose;
}

/** The `*.key` files directly inside `dir` (none when it does not exist). */
export function keyFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.key')).sort().map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** One sentence for a log line or stderr. */
export function looseKeyWarning(f: LooseKeyFile): string {
  return `private key ${f.path} has mode ${f.mode}: other users on this machine can read it; chmod 600 it (Kubernetes: defaultMode 0400 on the Secret volume)`;
}
