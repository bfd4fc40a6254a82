// The files both credential benches share (bench/credentials-proxy.ts through a sidecar, bench/credential-step.ts
// in process): an API key and an HMAC key made by `meshward apikey create`, a JWKS with one ES256 key and a
// token it signed, and a policy with one route per credential kind. Each bench writes its own sidecar.yaml.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { stringify } from 'yaml';

export const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
export const ISSUER = 'https://auth.bench.test';
/** The `credentials.jwt` entry that accepts `token`. */
export const JWT_ISSUER = { issuer: ISSUER, audiences: ['bench'], jwks: './jwks.json', algorithms: ['ES256'] };

export interface CredentialFiles {
  /** The plaintext API key (dir/apikeys.yaml holds its hash). */
  plainKey: string;
  hmac: { id: string; secret: string };
  /** An ES256 JWT of ISSUER valid for an hour. */
  token: string;
}

/** Writes apikeys.yaml, jwks.json and policy.yaml into dir; `cli` runs `meshward ARGS` and returns its stdout. */
export async function writeCredentialFiles(dir: string, cli: (args: string[]) => string): Promise<CredentialFiles> {
  const keyFile = join(dir, 'apikeys.yaml');
  const plain = JSON.parse(cli(['apikey', 'create', '--file', keyFile, '--name', 'bench', '--scopes', 'orders:read,orders:write', '--json'])) as { key: string };
  const hmac = JSON.parse(cli(['apikey', 'create', '--file', keyFile, '--name', 'bench-hmac', '--scopes', 'orders:read,orders:write', '--hmac', '--json'])) as { id: string; secret: string };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'b1', alg: 'ES256', use: 'sig' }] }));
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ iss: ISSUER, aud: 'bench', sub: 'svc', scope: 'orders:read orders:write', iat: now, exp: now + 3600 })
    .setProtectedHeader({ alg: 'ES256', kid: 'b1' }).sign(privateKey);
  writeFileSync(join(dir, 'policy.yaml'), stringify({
    grants: [{ identities: [FRONTEND], scopes: ['orders:read', 'orders:write'] }],
    routes: [
      { match: { path: '/mtls' }, scope: 'orders:read' },
      { match: { path: '/apikey' }, scope: 'orders:read', require: ['mtls', 'apikey'] },
      { match: { path: '/jwt' }, scope: 'orders:read', require: ['mtls', 'jwt'] },
      { match: { path: '/hmac' }, scope: 'orders:write', require: ['mtls', 'hmac'] },
    ],
  }));
  return { plainKey: plain.key, hmac, token };
}
