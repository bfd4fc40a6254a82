// `meshward serve`: command module (placeholder until its owner fills it in; keep the exported name).
import type { CommandModule } from 'yargs';

export const caServeCommand: CommandModule = {
  command: 'serve',
  describe: 'serve',
  builder: (y) => y,
  handler: () => undefined,
};
