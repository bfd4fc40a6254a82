// What several command modules share: yargs usage failures and malformed flag values as exit-2 errors, reading a file
// the user named, the --store option and opening the CA with it, how a command on a CA directory starts, a command
// that only groups others, and the exit status a handler may set without an error. Deliberately light (the CA code
// is imported only when a command opens the CA): main.ts imports it for every command, and `meshward sidecar` must
// not pay for code it never runs.
import { readFileSync, statSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { Authority } from '../ca/authority.js';
import { parseDuration } from '../duration.js';
import { MeshwardError, invalid } from '../errors.js';

/** Exit status a handler may set (e.g. `policy check` exits 1 on DENY without an error). */
export class ExitStatus {
  static code = 0;
}

/**
 * Makes yargs validation failures (unknown flag, missing or conflicting option) throw a usage error.
 * Without a throwing fail handler yargs reports the failure and then still runs the command's handler,
 * which for `cert issue --typo` would issue a certificate and then exit 2. `missingPositional` is the
 * sentence for a command run without its positional argument (`meshward inspect`).
 */
export function failAsUsage<T>(y: Argv<T>, command: string, missingPositional?: string): Argv<T> {
  return y.fail((msg, err) => {
    if (err) throw yargsErrorAsUsage(err, command);
    // yargs' "Not enough non-option arguments: got 0, need at least 1" does not say what is missing.
    if (missingPositional !== undefined && msg.startsWith('Not enough non-option arguments')) {
      throw new MeshwardError('usage', `${missingPositional} (see meshward ${command} --help)`);
    }
    throw new MeshwardError('usage', `${msg.replace(/\s*\n\s*/g, ' ')} (see meshward ${command} --help)`);
  });
}

/**
 * yargs hands its own parse errors to .fail() as a YError (`--policy` with no value after it: "Not enough
 * arguments following: policy"): those are usage errors, exit 2, like the validation failures it reports
 * without an error object. Anything else (a handler's MeshwardError) passes through unchanged.
 */
export function yargsErrorAsUsage(err: Error, command: string): Error {
  return err.name === 'YError' ? new MeshwardError('usage', `${err.message} (see meshward ${command === '' ? '' : `${command} `}--help)`) : err;
}

/**
 * A duration flag (`--ttl 5x`): a value the command line cannot parse is a usage error (exit 2), like an
 * unknown flag, not a refusal (exit 1). What the CA then thinks of a well-formed value (a TTL above
 * `maxTtl`, a zero TTL) stays a refusal.
 */
export function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (err) {
    throw new MeshwardError('usage', (err as Error).message);
  }
}

/** Reads a file the user named, with errors that say which flag and what is wrong. */
export function readInputFile(path: string, what: string): Buffer {
  try {
    if (statSync(path).isDirectory()) throw invalid(`${what} ${path} is a directory: name a file`);
    return readFileSync(path);
  } catch (err) {
    if (err instanceof MeshwardError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MeshwardError('not_found', `${what} ${path} does not exist`);
    if (code === 'EACCES') throw new MeshwardError('permission_denied', `cannot read ${what} ${path}: permission denied`);
    throw new MeshwardError('unavailable', `cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Opens the CA (its store chosen by --store, MESHWARD_STORE, config.yaml or D/ca.db), runs `fn`, always closes the store. */
export async function withAuthority<T>(dir: string, store: string | undefined, fn: (ca: Authority) => Promise<T>): Promise<T> {
  const { Authority } = await import('../ca/authority.js');
  const ca = await Authority.open(dir, { store });
  try {
    return await fn(ca);
  } finally {
    await ca.close();
  }
}

export const STORE_OPTION_HELP = "the CA's state: postgres://USER@HOST:PORT/DB, or sqlite (default: $MESHWARD_STORE, else store: in config.yaml, else DIR/ca.db)";

/** `--store`, on every command that reads or writes the CA's state. */
export function storeOption<T>(y: Argv<T>): Argv<T & { store: string | undefined }> {
  return y.option('store', { type: 'string', describe: STORE_OPTION_HELP });
}

/** The arguments every command on a CA directory has: `--store` and its directory flag. */
export type CaDirArgs<F extends 'dir' | 'ca-dir'> = { store: string | undefined } & { [K in F]: string };

/**
 * A command on a CA directory (`ca init`, `cert issue`, `token create`, …): yargs failures are usage errors naming
 * `name`, it takes `--store` and the directory flag (`--dir` for `ca …`, `--ca-dir` for commands that use the CA,
 * always required), and its own options, whose types the handler's arguments take.
 */
export function caDirCommand<F extends 'dir' | 'ca-dir', A extends CaDirArgs<F>>(name: string, flag: F, spec: {
  describe: string;
  /** What --help says of the directory flag (default: "the CA directory"). */
  dirDescribe?: string;
  options: (y: Argv<CaDirArgs<F>>) => Argv<A>;
  handler: (args: ArgumentsCamelCase<A>) => void | Promise<void>;
}): CommandModule<object, A> {
  return {
    command: name.slice(name.lastIndexOf(' ') + 1),
    describe: spec.describe,
    builder: (y) => spec.options(storeOption(failAsUsage(y, name))
      .option(flag, { type: 'string', demandOption: true, describe: spec.dirDescribe ?? 'the CA directory' }) as unknown as Argv<CaDirArgs<F>>),
    handler: spec.handler,
  };
}

/**
 * A command that only groups others (`meshward ca`, `cert`, `token`, `apikey`): run alone, it is a usage error
 * whose sentence (`missing`) names its subcommands.
 */
export function commandGroup(command: string, describe: string, subcommands: CommandModule<any, any>[], missing: string): CommandModule {
  return {
    command,
    describe,
    builder: (y: Argv) => subcommands.reduce((group, sub) => group.command(sub), y).demandCommand(1, missing),
    handler: () => undefined,
  };
}
