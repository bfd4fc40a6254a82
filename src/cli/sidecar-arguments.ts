// The plain `meshward sidecar --config FILE [--workers N] [--debug]` line, recognised without yargs.
// A sidecar runs for the life of its pod, and everything it loads stays resident: yargs and its
// helpers (about 1.5 MB of V8 heap, more while they start) would be kept only to read two flags.
// Any other shape (--help, an unknown or repeated flag, a missing value) returns undefined and goes
// through the full parser, so its errors and help text stay exactly yargs'.

export interface SidecarArguments {
  config: string;
  workers?: string;
  debug: boolean;
}

const VALUE_FLAGS = new Set(['config', 'workers']);

/** The sidecar's arguments when `argv` is the plain sidecar line, else undefined (use the full parser). */
export function plainSidecarArguments(argv: readonly string[]): SidecarArguments | undefined {
  if (argv[0] !== 'sidecar') return undefined;
  const values = new Map<string, string>();
  let debug = false;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--debug') {
      if (debug) return undefined;
      debug = true;
      continue;
    }
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !VALUE_FLAGS.has(m[1]!) || values.has(m[1]!)) return undefined;
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      // yargs reads a following flag as a missing value (requiresArg): leave that error to it.
      if (value === undefined || value.startsWith('-')) return undefined;
    }
    if (value === '') return undefined;
    values.set(m[1]!, value);
  }
  const config = values.get('config');
  if (config === undefined) return undefined;
  const workers = values.get('workers');
  return workers === undefined ? { config, debug } : { config, workers, debug };
}
