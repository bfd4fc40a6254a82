// `meshward webhook serve --listen ADDR --tls-dir DIR`: the mutating admission webhook that adds the
// sidecar to pods as they are created (src/kubernetes/admission.ts, webhook-server.ts). Runs until
// SIGTERM/SIGINT. Logs are JSON lines on stderr. Manifests: deploy/kubernetes/webhook/.
import type { Argv, CommandModule } from 'yargs';
import { pino } from 'pino';
import { MeshwardError } from '../errors.js';
import { parseHostPort } from '../sidecar/config.js';
import { DEFAULT_CONFIG_MAP } from '../kubernetes/sidecar-spec.js';
import { failAsUsage } from './command-support.js';
import { sidecarImageOptions } from './inject.js';

interface ServeArgs {
  listen: string;
  'tls-dir': string;
  image: string;
  'config-map': string;
  'bundle-config-map': string;
  'log-level'?: string;
}

const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'serve AdmissionReviews over HTTPS: POST /inject (pods labelled meshward.io/inject: enabled), /inject-namespace (every pod not opted out)',
  builder: (y: Argv) =>
    failAsUsage(
      sidecarImageOptions(y)
        .option('listen', { type: 'string', demandOption: true, requiresArg: true, describe: 'HOST:PORT to serve HTTPS on, e.g. 0.0.0.0:8443' })
        .option('tls-dir', { type: 'string', demandOption: true, requiresArg: true, describe: 'folder with tls.crt and tls.key (a Secret volume), reloaded when they change' })
        .option('config-map', { type: 'string', default: DEFAULT_CONFIG_MAP, requiresArg: true, describe: "ConfigMap in the pod's namespace with sidecar.yaml and policy.yaml" })
        .option('log-level', { type: 'string', choices: ['debug', 'info', 'warn', 'error'], describe: 'log level (default info)' }),
      'webhook serve',
    ) as unknown as Argv<ServeArgs>,
  handler: async (args) => {
    const listen = parseHostPort(args.listen);
    if (!listen) throw new MeshwardError('usage', `--listen "${args.listen}" must be HOST:PORT`);
    const logger = pino({ base: { component: 'webhook' }, level: args['log-level'] ?? 'info' }, pino.destination(2));
    const { startWebhookServer } = await import('../kubernetes/webhook-server.js');
    const server = await startWebhookServer({
      host: listen.host,
      port: listen.port,
      tlsDir: args['tls-dir'],
      sidecar: { image: args.image, configMap: args['config-map'], bundleConfigMap: args['bundle-config-map'] },
      logger,
    });
    logger.info({ event: 'listening', address: `${listen.host}:${server.port}` }, 'webhook serving');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
  },
};

export const webhookCommand: CommandModule = {
  command: 'webhook',
  describe: 'the Kubernetes mutating admission webhook that injects the meshward sidecar',
  builder: (y: Argv) => failAsUsage(y.command(serveCommand).demandCommand(1, 'name a webhook command: serve'), 'webhook'),
  handler: () => undefined,
};
