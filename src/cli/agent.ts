// `meshward agent`: command module (placeholder until its owner fills it in; keep the exported name).
import type { CommandModule } from 'yargs';

export const agentCommand: CommandModule = {
  command: 'agent',
  describe: 'agent',
  builder: (y) => y,
  handler: () => undefined,
};
