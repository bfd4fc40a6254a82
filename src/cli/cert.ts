// `meshward cert`: command module (subcommands are added by the module's owner).
import type { CommandModule } from 'yargs';

export const certCommand: CommandModule = {
  command: 'cert',
  describe: 'cert commands',
  builder: (y) => y.demandCommand(1),
  handler: () => undefined,
};
