// `meshward policy`: command module (subcommands are added by the module's owner).
import type { CommandModule } from 'yargs';

export const policyCommand: CommandModule = {
  command: 'policy',
  describe: 'policy commands',
  builder: (y) => y.demandCommand(1),
  handler: () => undefined,
};
