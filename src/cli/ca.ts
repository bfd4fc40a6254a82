// `meshward ca`: command module (subcommands are added by the module's owner).
import type { CommandModule } from 'yargs';

export const caCommand: CommandModule = {
  command: 'ca',
  describe: 'ca commands',
  builder: (y) => y.demandCommand(1),
  handler: () => undefined,
};
