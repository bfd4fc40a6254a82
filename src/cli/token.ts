// `meshward token create`: a one-time bootstrap token for one SPIFFE ID, printed on stdout (only the
// token, so `TOKEN=$(meshward token create ...)` works; --json for the expiry too).
import type { Argv, CommandModule } from 'yargs';
import { MeshwardError } from '../errors.js';
import { parseDuration } from '../duration.js';
import { loadCaConfig } from '../ca/config.js';
import { CaLayout } from '../ca/layout.js';
import { CaStore } from '../ca/store.js';
import { createBootstrapToken, DEFAULT_TOKEN_TTL_MS } from '../ca/tokens.js';
import { compileSpiffePattern, parseWorkloadSpiffeId } from '../pki/spiffe.js';

interface CreateArgs { 'ca-dir': string; 'spiffe-id': string; ttl?: string; json?: boolean }

/** Refuses IDs this CA would never sign, so the mistake shows now rather than when a workload bootstraps. */
function checkIssuable(caDir: string, spiffeId: string): void {
  const config = loadCaConfig(new CaLayout(caDir).config);
  const id = parseWorkloadSpiffeId(spiffeId);
  if (id.trustDomain !== config.trustDomain) {
    throw new MeshwardError('invalid_argument', `${spiffeId} is outside this CA's trust domain ${config.trustDomain}: use spiffe://${config.trustDomain}/...`);
  }
  if (!config.allowedSpiffeIds.some((p) => compileSpiffePattern(p)(spiffeId))) {
    throw new MeshwardError('permission_denied', `${spiffeId} matches none of allowedSpiffeIds in config.yaml (${config.allowedSpiffeIds.join(', ')})`);
  }
}

const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create',
  describe: 'print a one-time bootstrap token for one SPIFFE ID (for meshward agent --token)',
  builder: (y: Argv) => y
    .option('ca-dir', { type: 'string', demandOption: true, describe: 'the CA directory' })
    .option('spiffe-id', { type: 'string', demandOption: true, describe: 'the identity the token may enroll' })
    .option('ttl', { type: 'string', describe: 'how long the token may be used (default 10m)' })
    .option('json', { type: 'boolean', describe: 'print {token, spiffeId, expiresAt} as JSON' }) as unknown as Argv<CreateArgs>,
  handler: (args) => {
    const ttlMs = args.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(args.ttl, '--ttl');
    checkIssuable(args['ca-dir'], args['spiffe-id']);
    const store = CaStore.open(new CaLayout(args['ca-dir']).database);
    try {
      const created = createBootstrapToken(store, args['spiffe-id'], ttlMs, new Date());
      process.stdout.write(args.json
        ? `${JSON.stringify({ token: created.token, spiffeId: created.spiffeId, expiresAt: created.expiresAt.toISOString() })}\n`
        : `${created.token}\n`);
    } finally {
      store.close();
    }
  },
};

export const tokenCommand: CommandModule = {
  command: 'token <command>',
  describe: 'one-time bootstrap tokens for meshward agent',
  builder: (y: Argv) => y.command(createCommand as unknown as CommandModule).demandCommand(1, 'name a token command: create'),
  handler: () => undefined,
};
