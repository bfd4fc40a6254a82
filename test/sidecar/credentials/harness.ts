// A real sidecar (bin/meshward.js) with API credentials configured, for the end-to-end credential tests:
// keys made with `meshward apikey`, a JWT issuer (an ES256 key pair and its JWKS file, tokens signed here
// with jose), a policy whose routes require each kind of proof, and curl as the client.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exportJWK, SignJWT, type JWTPayload } from 'jose';
import { runCli } from '../../support/cli.js';
import { FRONTEND_ID, makeScenario, startEchoHttpApp, startSidecarProcess, STRANGER_ID, type ClientFiles, type EchoHttpApp, type Scenario, type SidecarProcess } from '../../support/sidecar.js';
import { REPO_ROOT } from '../../support/cli.js';

export const ISSUER = 'https://auth.example.test';
export const AUDIENCE = 'orders-api';

/** Routes for every kind of proof (docs/policy.md). frontend holds every scope; stranger holds none. */
export const CREDENTIAL_POLICY = {
  mode: 'enforce',
  grants: [{ identities: [FRONTEND_ID], scopes: ['orders:read', 'orders:write', 'payments:write', 'reports:read'] }],
  routes: [
    { match: { methods: ['POST'], path: '/payments/**' }, scope: 'payments:write', require: ['mtls', 'apikey', 'hmac'] },
    { match: { path: '/reports/**' }, scope: 'reports:read', require: { anyOf: [['jwt'], ['apikey']] } },
    { match: { path: '/keyed/**' }, scope: 'orders:read', require: ['apikey'] },
    { match: { path: '/signed/**' }, scope: 'orders:write', require: ['hmac'] },
    { match: { path: '/token/**' }, scope: 'orders:read', require: ['jwt'] },
    { match: { path: '/shop.v1.Orders/*' }, scope: 'orders:read', require: ['apikey'] },
    { match: { methods: ['GET'], path: '/orders/**' }, scope: 'orders:read' },
  ],
};

export interface CreatedKey {
  id: string;
  key: string;
  /** base64 HMAC secret (--hmac keys). */
  secret: string | null;
}

export interface Issuer {
  privateKey: KeyObject;
  kid: string;
  jwks: { keys: object[] };
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

/** An ES256 issuer with one key; `sign` fills iss, aud, sub, iat, exp unless the claims say otherwise. */
export async function makeIssuer(kid = 'k1'): Promise<Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'ES256' };
  return {
    privateKey,
    kid,
    jwks: { keys: [jwk] },
    sign(claims, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-reports', iat: now, exp: now + 600, scope: 'reports:read orders:read', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid, ...header })
        .sign(privateKey);
    },
  };
}

export async function createKey(file: string, args: string[]): Promise<CreatedKey> {
  const r = await runCli(['apikey', 'create', '--file', file, '--json', ...args]);
  if (r.code !== 0) throw new Error(`apikey create ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CreatedKey;
}

export interface CredentialSidecar {
  scenario: Scenario;
  app: EchoHttpApp;
  sidecar: SidecarProcess;
  port: number;
  keyFile: string;
  jwksFile: string;
  frontend: ClientFiles;
  stranger: ClientFiles;
  close(): Promise<void>;
}

/** Starts the echo app and a sidecar with `credentials:` (key file, one JWT issuer by file) and clientCertificate optional. */
export async function startCredentialSidecar(opts: { issuer: Issuer; prepareKeys: (file: string) => Promise<void>; policy?: object; config?: Record<string, unknown>; app?: string }): Promise<CredentialSidecar> {
  const app = await startEchoHttpApp();
  const scenario = makeScenario({ app: opts.app ?? app.url, policy: opts.policy ?? CREDENTIAL_POLICY });
  const keyFile = join(scenario.tmp, 'keys', 'apikeys.yaml');
  const jwksFile = join(scenario.tmp, 'jwks', 'jwks.json');
  mkdirSync(dirname(keyFile), { recursive: true });
  await opts.prepareKeys(keyFile);
  writeJson(jwksFile, opts.issuer.jwks);
  const config = {
    identity: { dir: './identity', recheckInterval: '1s' },
    inbound: { listen: '127.0.0.1:0', app: opts.app ?? app.url, clientCertificate: 'optional' },
    policy: './policy.yaml',
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'debug', allowed: 'info' },
    credentials: {
      apiKeys: './keys/apikeys.yaml',
      hmac: { maxSkew: '300s', maxBody: '64KiB' },
      jwt: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: './jwks/jwks.json', algorithms: ['ES256'] }],
    },
    ...opts.config,
  };
  writeFileSync(scenario.configPath, JSON.stringify(config));
  let sidecar: SidecarProcess | undefined;
  let port: number;
  try {
    sidecar = await startSidecarProcess(scenario.configPath);
    port = await sidecar.waitForInbound();
  } catch (err) {
    // Nothing may stay behind a failed start (the test's after() has no handle to close).
    await sidecar?.stop();
    await app.close();
    scenario.cleanup();
    throw err;
  }
  const frontend = scenario.clientFiles(scenario.pki.leaf({ spiffeId: FRONTEND_ID }), 'frontend');
  const stranger = scenario.clientFiles(scenario.pki.leaf({ spiffeId: STRANGER_ID }), 'stranger');
  return {
    scenario, app, sidecar: sidecar!, port, keyFile, jwksFile, frontend, stranger,
    async close() {
      await sidecar!.stop();
      await app.close();
      scenario.cleanup();
    },
  };
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
}

export interface CurlResult {
  status: number;
  /** Lower-case header name → every value. */
  headers: Record<string, string[]>;
  body: string;
  json: Record<string, unknown>;
}

/** curl against the sidecar: `client` presents a certificate (or none), `args` are extra curl arguments. */
export function curl(t: CredentialSidecar, client: ClientFiles | undefined, method: string, path: string, args: string[] = []): Promise<CurlResult> {
  const url = `https://127.0.0.1:${t.port}${path}`;
  const cert = client === undefined ? [] : ['--cert', client.cert, '--key', client.key];
  const all = ['-sS', '--max-time', '20', '--cacert', join(t.scenario.tmp, 'bundle.crt'), ...cert, '-X', method, '-D', '-', ...args, url];
  return new Promise((resolve, reject) => {
    execFile('curl', all, { maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${all.join(' ')}: ${stderr || err.message}`));
      // -D - writes the header block(s) first; a 100 Continue block may come before the final one.
      const blocks = stdout.split('\r\n\r\n');
      let i = 0;
      while (/^HTTP\/\S+ 100/.test(blocks[i] ?? '')) i++;
      const head = blocks[i] ?? '';
      const body = blocks.slice(i + 1).join('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string[]> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        (headers[l.slice(0, c).toLowerCase()] ??= []).push(l.slice(c + 1).trim());
      }
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // not JSON
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body, json });
    });
  });
}

/** The request the echo app saw last, as it reported it. */
export function seen(r: CurlResult): { method: string; url: string; headers: Record<string, string>; body: string } {
  return r.json as never;
}

/** The Python signer (test/auth/fixtures/hmac_sign.py), independent of src/auth: headers for one request. */
export function pythonSign(req: { method: string; authority: string; path: string; query?: string | null; body?: Buffer; keyid: string; secretB64: string; created?: number; components?: string[]; nonce?: string }): Promise<Record<string, string>> {
  const script = join(REPO_ROOT, 'test', 'auth', 'fixtures', 'hmac_sign.py');
  const line = JSON.stringify({
    method: req.method,
    scheme: 'https',
    authority: req.authority,
    path: req.path,
    query: req.query ?? null,
    headers: {},
    body_b64: req.body === undefined ? null : req.body.toString('base64'),
    keyid: req.keyid,
    secret_b64: req.secretB64,
    created: req.created ?? Math.floor(Date.now() / 1000),
    // A fresh nonce by default: two requests signed in the same second would otherwise be one signature.
    nonce: req.nonce ?? randomBytes(8).toString('hex'),
    ...(req.components !== undefined ? { components: req.components } : {}),
  });
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [script], (err, stdout, stderr) => {
      if (err) return reject(new Error(`hmac_sign.py: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n')[0]!) as Record<string, string>);
    });
    child.stdin!.end(`${line}\n`);
  });
}

/** curl -H arguments for a header object. */
export function headerArgs(h: Record<string, string>): string[] {
  return Object.entries(h).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
