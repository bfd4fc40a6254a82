// `meshward inject -f FILE|-`: prints Kubernetes YAML with meshward added to every workload
// (src/kubernetes/manifests.ts), for `meshward inject -f app.yaml | kubectl apply -f -`. The whole input is
// read and injected before anything is printed: on an error the output is empty, stderr has one line.
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { MeshwardError } from '../errors.js';
import { spiffeIdProblem } from '../pki/spiffe.js';
import { parseHostPort } from '../sidecar/config.js';
import { injectManifests } from '../kubernetes/manifests.js';
import { DEFAULT_BUNDLE_CONFIG_MAP, DEFAULT_IMAGE } from '../kubernetes/sidecar-spec.js';
import { failAsUsage, readInputFile } from './command-support.js';

interface InjectArgs {
  filename: string;
  image: string;
  ca: string;
  'trust-domain'?: string;
  'app-port'?: number;
  'config-map'?: string;
  'bundle-config-map': string;
}

export const DEFAULT_CA_ADDRESS = 'meshward-ca.meshward-system.svc:8443';

/** The options every injecting command shares (inject, webhook serve). */
export function sidecarImageOptions<T>(y: Argv<T>) {
  return y
    .option('image', { type: 'string', default: DEFAULT_IMAGE, requiresArg: true, describe: 'the meshward image of the sidecar' })
    .option('bundle-config-map', { type: 'string', default: DEFAULT_BUNDLE_CONFIG_MAP, requiresArg: true, describe: "ConfigMap holding bundle.crt, the CA's trust bundle" });
}

/** Reads FILE, or standard input for `-`. */
function readManifests(file: string): string {
  if (file !== '-') return readInputFile(file, '-f').toString('utf8');
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    throw new MeshwardError('unavailable', `cannot read standard input: ${(err as Error).message}`);
  }
}

export const injectCommand: CommandModule<object, InjectArgs> = {
  command: 'inject',
  describe: 'print Kubernetes YAML with the meshward sidecar added to every workload (kubectl apply -f - takes it)',
  builder: (y: Argv) =>
    failAsUsage(
      sidecarImageOptions(y)
        .option('filename', { alias: 'f', type: 'string', demandOption: true, requiresArg: true, describe: 'YAML file to read, or - for standard input' })
        .option('ca', { type: 'string', default: DEFAULT_CA_ADDRESS, requiresArg: true, describe: 'HOST:PORT of meshward ca serve, written into a generated sidecar.yaml' })
        .option('trust-domain', { type: 'string', requiresArg: true, describe: 'trust domain whose workloads a generated policy.yaml lets in (needed unless --config-map)' })
        .option('app-port', { type: 'number', requiresArg: true, describe: "the app's port on 127.0.0.1 in a generated sidecar.yaml (default: the first container's first containerPort)" })
        .option('config-map', { type: 'string', requiresArg: true, describe: 'an existing ConfigMap with sidecar.yaml and policy.yaml (default: generate meshward-NAME per workload)' }),
      'inject',
    ) as unknown as Argv<InjectArgs>,
  handler: (args) => {
    if (!parseHostPort(args.ca)) throw new MeshwardError('usage', `--ca "${args.ca}" must be HOST:PORT of meshward ca serve`);
    const td = args['trust-domain'];
    if (td !== undefined && spiffeIdProblem(`spiffe://${td}/x`) !== undefined) {
      throw new MeshwardError('usage', `--trust-domain "${td}" is not a trust domain (lower-case letters, digits, dots, dashes, underscores)`);
    }
    const port = args['app-port'];
    if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new MeshwardError('usage', '--app-port must be a port number (1-65535)');
    const source = args.filename === '-' ? '<stdin>' : args.filename;
    const output = injectManifests(readManifests(args.filename), source, {
      image: args.image,
      bundleConfigMap: args['bundle-config-map'],
      configMap: args['config-map'],
      ca: args.ca,
      trustDomain: td,
      appPort: port,
    });
    process.stdout.write(output);
  },
};
