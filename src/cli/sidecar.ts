// `meshward sidecar`: command module (subcommands are added by the module's owner).
import type { CommandModule } from 'yargs';

export const sidecarCommand: CommandModule = {
  command: 'sidecar',
  describe: 'sidecar commands',
  builder: (y) => y.demandCommand(1),
  handler: () => undefined,
};
