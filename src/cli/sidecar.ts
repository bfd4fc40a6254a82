// `meshward sidecar --config FILE`: runs the sidecar until SIGTERM/SIGINT, then drains and exits 0.
// Configuration problems are one line naming the file and field, exit 2.
import type { CommandModule } from 'yargs';
import { loadSidecarConfig } from '../sidecar/config.js';
import { startSidecar } from '../sidecar/sidecar.js';

interface SidecarArgs {
  config: string;
}

export const sidecarCommand: CommandModule<object, SidecarArgs> = {
  command: 'sidecar',
  describe: 'run the mTLS sidecar (inbound listener, policy, admin server) from a YAML config',
  builder: (y) =>
    y.option('config', { type: 'string', demandOption: true, describe: 'sidecar YAML configuration file', requiresArg: true }) as any,
  handler: async (args) => {
    const config = loadSidecarConfig(args.config);
    const sidecar = await startSidecar(config);
    const onSignal = (signal: NodeJS.Signals) => {
      void sidecar.shutdown(`received ${signal}`);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await sidecar.done;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // Everything is closed; a handle some library keeps (a pooled socket, a timer) must not keep the
    // process from exiting after a completed drain.
    setTimeout(() => process.exit(), 2000).unref();
  },
};
