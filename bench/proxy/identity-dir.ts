// Identity directories in the Kubernetes Secret volume layout, and rotation the way the kubelet does it:
// the files live in a timestamped directory, `..data` is a symlink to it, and each visible name
// (tls.crt, tls.key, ca.crt, …) is a symlink to `..data/<name>`. A rotation writes a new timestamped
// directory, points `..data_tmp` at it and renames that over `..data` (one atomic rename), then removes
// the old directory: a reader never sees a new certificate with an old key.
import fs from 'node:fs';
import path from 'node:path';

function timestampedName(seq: number): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_` +
    `${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.${p(seq, 9)}`;
}

let sequence = 0;

/** Writes files into dir as a new `..data` generation (creating the layout on first use). */
export function writeGeneration(dir: string, files: Record<string, Buffer | string>): void {
  fs.mkdirSync(dir, { recursive: true });
  const dataLink = path.join(dir, '..data');
  const previous = fs.lstatSync(dataLink, { throwIfNoEntry: false }) ? fs.readlinkSync(dataLink) : undefined;
  const name = timestampedName(++sequence);
  const generation = path.join(dir, name);
  fs.mkdirSync(generation, { mode: 0o755 });
  for (const [file, data] of Object.entries(files)) {
    fs.writeFileSync(path.join(generation, file), data, { mode: file.endsWith('.key') || file.endsWith('.pem') ? 0o600 : 0o644 });
  }
  const tmp = path.join(dir, '..data_tmp');
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(name, tmp);
  fs.renameSync(tmp, dataLink);
  for (const file of Object.keys(files)) {
    const visible = path.join(dir, file);
    if (!fs.lstatSync(visible, { throwIfNoEntry: false })) fs.symlinkSync(path.join('..data', file), visible);
  }
  if (previous !== undefined && previous !== name) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}
