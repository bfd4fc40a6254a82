// The `meshward` command line: builds the yargs parser from one module per top-level command and turns
// errors into one clear line on stderr and an exit status (0 done, 1 refused/failed, 2 usage error).
import type { Argv, CommandModule } from 'yargs';
import { isBootstrapTokenShape } from '../ca/tokens.js';
import { MeshwardError, isMeshwardError } from '../errors.js';
import { ExitStatus, yargsErrorAsUsage } from './command-support.js';
import { plainSidecarArguments } from './sidecar-arguments.js';
// Each command module is loaded only when its command runs: `meshward sidecar` must not pay (in start-up
// time and resident memory) for gRPC, SQLite and the CA code it never uses.
type Loader = () => Promise<CommandModule<any, any>>;
const COMMANDS: Record<string, Loader> = {
  ca: async () => (await import('./ca.js')).caCommand,
  cert: async () => (await import('./cert.js')).certCommand,
  token: async () => (await import('./token.js')).tokenCommand,
  agent: async () => (await import('./agent.js')).agentCommand,
  sidecar: async () => (await import('./sidecar.js')).sidecarCommand,
  policy: async () => (await import('./policy.js')).policyCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  apikey: async () => (await import('./apikey.js')).apikeyCommand,
  inject: async () => (await import('./inject.js')).injectCommand,
  webhook: async () => (await import('./webhook.js')).webhookCommand,
};

/** The command named first on the line, or every command (for --help and for unknown names). */
function commandsFor(argv: string[]): Promise<CommandModule<any, any>[]> {
  const first = argv.find((a) => !a.startsWith('-'));
  const one = first !== undefined ? COMMANDS[first] : undefined;
  return Promise.all(one ? [one()] : Object.values(COMMANDS).map((load) => load()));
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  ExitStatus.code = 0;
  // The sidecar stays resident for the life of its pod: its plain command line skips yargs (and the
  // memory it would keep); every other line, --help included, gets the full parser.
  const sidecar = plainSidecarArguments(argv);
  if (sidecar !== undefined) {
    try {
      const { sidecarCommand } = await import('./sidecar.js');
      await sidecarCommand.handler({ ...sidecar, _: ['sidecar'], $0: 'meshward' });
    } catch (err) {
      return reportError(err, debug);
    }
    return ExitStatus.code;
  }
  const { default: yargs } = await import('yargs');
  let parser: Argv = yargs(bindDashedTokens(argv))
    .scriptName('meshward')
    .option('debug', { type: 'boolean', describe: 'print stack traces on errors', global: true })
    .strict()
    .demandCommand(1, 'name a command: meshward --help lists them')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw yargsErrorAsUsage(err, '');
      // Throwing stops yargs before any handler runs: a usage error must never half-run a command.
      throw new MeshwardError('usage', `${msg} (see meshward --help)`);
    });
  for (const command of await commandsFor(argv)) parser = parser.command(command);
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(err, debug);
  }
  return ExitStatus.code;
}

/**
 * `--token VALUE` where VALUE begins with "-" becomes `--token=VALUE` when VALUE has a bootstrap token's
 * shape: tokens made before tokens.ts stopped drawing them began with "-" once in 64, and yargs reads such a
 * value as flags (one holding an "h" as --help: exit 0, nothing done). Nothing with that shape is a flag.
 */
export function bindDashedTokens(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === '--token' && next !== undefined && next.startsWith('-') && isBootstrapTokenShape(next)) {
      out.push(`--token=${next}`);
      i++;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

function reportError(err: unknown, debug: boolean): number {
  if (isMeshwardError(err)) {
    process.stderr.write(`meshward: error: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.code === 'usage' ? 2 : 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`meshward: error: ${message.split('\n')[0]}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
