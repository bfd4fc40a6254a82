// `meshward token create`: a one-time bootstrap token for one SPIFFE ID, printed on stdout (only the
// token, so `TOKEN=$(meshward token create ...)` works; --json for the expiry too).
import { DEFAULT_TOKEN_TTL_MS } from '../ca/tokens.js';
import { parseWorkloadSpiffeId } from '../pki/spiffe.js';
import { caDirCommand, commandGroup, durationFlag, withAuthority } from './command-support.js';

const createCommand = caDirCommand('token create', 'ca-dir', {
  describe: 'print a one-time bootstrap token for one SPIFFE ID (for meshward agent --token)',
  options: (y) => y
    .option('spiffe-id', { type: 'string', demandOption: true, describe: 'the identity the token may enroll' })
    .option('ttl', { type: 'string', describe: 'how long the token may be used (default 10m)' })
    .option('json', { type: 'boolean', describe: 'print {token, spiffeId, expiresAt} as JSON' }),
  handler: async (args) => {
    const ttlMs = args.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : durationFlag(args.ttl, '--ttl');
    parseWorkloadSpiffeId(args['spiffe-id']); // a malformed ID is refused before the CA is opened
    // The Authority refuses IDs this CA would never sign, so the mistake shows now rather than when a workload bootstraps.
    const created = await withAuthority(args['ca-dir'], args.store, (ca) => ca.createToken(args['spiffe-id'], ttlMs, new Date()));
    process.stdout.write(args.json
      ? `${JSON.stringify({ token: created.token, spiffeId: created.spiffeId, expiresAt: created.expiresAt.toISOString() })}\n`
      : `${created.token}\n`);
  },
});

export const tokenCommand = commandGroup('token', 'one-time bootstrap tokens for meshward agent', [createCommand], 'name a token command: create');
