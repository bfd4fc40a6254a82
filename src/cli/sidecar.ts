// `meshward sidecar --config FILE [--workers N|auto]`: runs the sidecar until SIGTERM/SIGINT, then
// drains and exits 0. Configuration problems are one line naming the file and field, exit 2.
// workers 1 (the default) is one process; more makes this process a node:cluster primary that forks
// them (src/sidecar/workers/cluster.ts), and each forked worker comes back through this same command.
import type { CommandModule } from 'yargs';
import { MeshwardError } from '../errors.js';
import { SIDECAR_CONFIG_FILE, WORKERS_MESSAGE, parseSidecarConfigText, parseWorkers } from '../sidecar/config.js';
import { createLogger, flushLogs } from '../sidecar/observe/log.js';
import type { Logger } from 'pino';
import { isSidecarWorker, runWorker } from '../sidecar/workers/worker.js';
import { capYoungGeneration } from '../sidecar/memory.js';

interface SidecarArgs {
  config: string;
  workers?: string;
}

/** Runs `start` (if given) and then until `done`, draining on SIGTERM/SIGINT from the moment it is called. */
async function runUntilSignalled(target: { shutdown(reason: string): Promise<void>; done: Promise<void>; logger: Logger }, start?: () => Promise<void>): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    void target.shutdown(`received ${signal}`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await start?.();
    await target.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // The last lines (the drain, 'sidecar stopped') are in the log buffer: written before exiting.
    await flushLogs(target.logger);
  }
  // Everything is closed; a handle some library keeps (a pooled socket, a timer) must not keep the
  // process from exiting after a completed drain.
  setTimeout(() => process.exit(), 2000).unref();
}

export const sidecarCommand: CommandModule<object, SidecarArgs> = {
  command: 'sidecar',
  describe: 'run the mTLS sidecar (inbound listener, policy, admin server) from a YAML config',
  builder: (y) =>
    y
      .option('config', { type: 'string', demandOption: true, describe: 'sidecar YAML configuration file', requiresArg: true })
      .option('workers', { type: 'string', requiresArg: true, describe: 'processes serving traffic: a positive integer or auto (one per core); overrides the config file' }) as any,
  handler: async (args) => {
    // Every sidecar process (single, cluster primary, worker) caps its young generation;
    // bin/meshward.js applies it before loading anything when `sidecar` is the first argument.
    capYoungGeneration();
    if (isSidecarWorker()) await runWorker(args.config);
    const text = SIDECAR_CONFIG_FILE.read(args.config);
    const config = parseSidecarConfigText(text, args.config);
    if (args.workers !== undefined) {
      const n = parseWorkers(args.workers);
      if (n === undefined) throw new MeshwardError('usage', `--workers: ${WORKERS_MESSAGE}`);
      config.workers = n;
    }
    // Each side loads only what it runs: the primary serves no traffic and holds no TLS or HTTP stack.
    if (config.workers === 1) {
      const { startSidecar } = await import('../sidecar/sidecar.js');
      await runUntilSignalled(await startSidecar(config));
      return;
    }
    const { SidecarCluster } = await import('../sidecar/workers/cluster.js');
    const primary = new SidecarCluster(config, text, createLogger(config.log.level).child({ role: 'primary' }));
    // Signals are handled while the workers start: a SIGTERM then drains them instead of orphaning them.
    await runUntilSignalled(primary, () => primary.start());
  },
};
