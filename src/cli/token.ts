// `meshward token`: command module (placeholder until its owner fills it in; keep the exported name).
import type { CommandModule } from 'yargs';

export const tokenCommand: CommandModule = {
  command: 'token',
  describe: 'token',
  builder: (y) => y,
  handler: () => undefined,
};
