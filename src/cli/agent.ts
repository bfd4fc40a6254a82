// `meshward agent`: obtains and keeps renewing a workload certificate into --out (Kubernetes Secret layout).
// Runs until SIGINT/SIGTERM, or with --once until one valid certificate is in place (init containers).
// Exits 1 with one sentence when it can no longer authenticate (e.g. "certificate expired; bootstrap again
// with a new token"). Logs are JSON lines on stderr (stdout stays free for scripts).
import type { Argv, CommandModule } from 'yargs';
import { pino } from 'pino';
import { MeshwardError } from '../errors.js';
import { durationFlag } from './command-support.js';
import { Agent } from '../agent/agent.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';

interface AgentArgs {
  ca: string; bundle: string; token?: string; 'token-file'?: string; out: string; 'spiffe-id'?: string; dns?: string[]; once?: boolean;
  ttl?: string; 'key-type'?: string; 'log-level'?: string;
}

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'get a certificate from meshward ca serve and keep it renewed in --out (the key never leaves this machine)',
  builder: (y: Argv) => y
    .option('ca', { type: 'string', demandOption: true, describe: 'HOST:PORT of meshward ca serve' })
    .option('bundle', { type: 'string', demandOption: true, describe: "PEM roots that sign the CA server's certificate (the CA's bundle.crt)" })
    .option('token', { type: 'string', describe: 'bootstrap token (meshward token create) or Kubernetes service-account JWT' })
    .option('token-file', { type: 'string', describe: 'file holding the token (re-read at every attempt, e.g. a projected service-account token)' })
    .option('out', { type: 'string', demandOption: true, describe: 'folder for tls.crt, tls.key and ca.crt' })
    .option('spiffe-id', { type: 'string', describe: 'identity to request (needed for the first certificate)' })
    .option('dns', { type: 'string', array: true, requiresArg: true, describe: 'DNS name to request too, repeatable (a server reached by host name, e.g. the admission webhook)' })
    .option('ttl', { type: 'string', describe: "requested certificate lifetime (default: the CA's)" })
    .option('key-type', { type: 'string', choices: KEY_TYPES, describe: 'key type (default ec-p256)' })
    .option('once', { type: 'boolean', describe: 'exit once a valid certificate is in place (init containers)' })
    .option('log-level', { type: 'string', choices: ['debug', 'info', 'warn', 'error'], describe: 'log level (default info)' })
    .conflicts('token', 'token-file') as unknown as Argv<AgentArgs>,
  handler: async (args) => {
    const ttlMs = args.ttl === undefined ? undefined : durationFlag(args.ttl, '--ttl');
    if (ttlMs !== undefined && ttlMs < 1000) throw new MeshwardError('usage', '--ttl must be at least 1s');
    const logger = pino({ base: { component: 'agent' }, level: args['log-level'] ?? 'info' }, pino.destination(2));
    const agent = new Agent({
      ca: args.ca,
      bundleFile: args.bundle,
      outDir: args.out,
      token: args.token,
      tokenFile: args['token-file'],
      spiffeId: args['spiffe-id'],
      dns: args.dns,
      keyType: args['key-type'] as KeyType | undefined,
      ttlMs,
      once: args.once,
      logger,
    });
    await agent.start();
    if (args.once) {
      await agent.stop();
      return;
    }
    const onSignal = () => void agent.stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await agent.closed;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
