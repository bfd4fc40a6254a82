// jose (the JWT library) is loaded only by a sidecar that has JWT issuers, and only when a token arrives:
// a sidecar without them, the common case, never holds its code (docs/configuration.md, "Memory"). A module
// loader hook in the sidecar process (NODE_OPTIONS=--import, so the workers have it too) writes every URL
// it resolves under node_modules/jose to a file; the JWT sidecar proves the hook sees jose when it loads.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runningSidecar, type RunningSidecar } from '../support/running-sidecar.js';
import { FRONTEND_ID, type EchoHttpApp } from '../support/sidecar.js';
import { tempDir } from '../support/temp-dir.js';
import { AUDIENCE, CREDENTIAL_POLICY, curl, ISSUER, makeIssuer, type CredentialSidecar, type Issuer } from './credentials/harness.js';

const hooks = tempDir();
after(() => hooks.cleanup());
const register = join(hooks.dir, 'register.mjs');
writeFileSync(
  join(hooks.dir, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.includes('/node_modules/jose/')) appendFileSync(log, resolved.url + '\\n');
  return resolved;
}
`,
);

/** A sidecar whose process records the jose modules it loads into its own file; `loaded()` reads them. */
function recordingSidecar(name: string, config: Record<string, unknown>, prepare?: (tmp: string) => void, policy?: object) {
  const log = join(hooks.dir, `${name}.log`);
  writeFileSync(join(hooks.dir, `${name}.mjs`), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url, { data: { log: ${JSON.stringify(log)} } });\n`);
  const rig = runningSidecar('http', {
    config,
    ...(policy === undefined ? {} : { policy }),
    env: { NODE_OPTIONS: `--import ${join(hooks.dir, `${name}.mjs`)}` },
    prepare: (scenario) => prepare?.(scenario.tmp),
  });
  return { rig, loaded: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : []) };
}

async function call(rig: RunningSidecar<EchoHttpApp>, path = '/orders/1', args: string[] = []) {
  const t = { port: rig.port, scenario: rig.scenario } as unknown as CredentialSidecar;
  return curl(t, rig.scenario.clientFiles(rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), 'frontend'), 'GET', path, args);
}

describe('a sidecar without credentials', () => {
  const { rig, loaded } = recordingSidecar('plain', {});
  it('serves a request and never loads jose', async () => {
    assert.equal((await call(rig)).status, 200);
    assert.deepEqual(loaded(), []);
  });
});

describe('a sidecar with API keys but no JWT issuer', () => {
  const { rig, loaded } = recordingSidecar('apikeys', { credentials: { apiKeys: './keys.yaml' } }, (tmp) => writeFileSync(join(tmp, 'keys.yaml'), ''));
  it('serves a request and never loads jose', async () => {
    assert.equal((await call(rig)).status, 200);
    assert.deepEqual(loaded(), []);
  });
});

describe('a sidecar with a JWT issuer', () => {
  let issuer: Issuer;
  // Registered before the sidecar's own before() hook, so the JWKS exists when prepare() writes it.
  before(async () => {
    issuer = await makeIssuer();
  });
  const { rig, loaded } = recordingSidecar(
    'jwt',
    { credentials: { jwt: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: './jwks/jwks.json', algorithms: ['ES256'] }] } },
    (tmp) => {
      mkdirSync(join(tmp, 'jwks'));
      writeFileSync(join(tmp, 'jwks', 'jwks.json'), JSON.stringify(issuer.jwks));
    },
    CREDENTIAL_POLICY,
  );
  it('loads jose on the first token and verifies it: a valid token passes, a tampered one is refused', async () => {
    assert.deepEqual(loaded(), [], 'jose loaded before any token arrived');
    const token = await issuer.sign({});
    const ok = await call(rig, '/token/1', ['-H', `authorization: Bearer ${token}`]);
    assert.equal(ok.status, 200, ok.body);
    assert.ok(loaded().some((url) => url.includes('/node_modules/jose/')), 'the hook saw jose load');
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: 9999999999 })).toString('base64url')}.${s}`;
    const refused = await call(rig, '/token/1', ['-H', `authorization: Bearer ${forged}`]);
    assert.equal(refused.status, 401, refused.body);
  });
});
