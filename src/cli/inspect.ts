// `meshward inspect`: command module (subcommands are added by the module's owner).
import type { CommandModule } from 'yargs';

export const inspectCommand: CommandModule = {
  command: 'inspect',
  describe: 'inspect commands',
  builder: (y) => y.demandCommand(1),
  handler: () => undefined,
};
