// Certificates for the proxy benchmark: one CA per key type, a server and a client identity each, and
// spare server certificates for the rotation test. They come from the repo's own CLI
// (`meshward ca init` / `meshward cert issue`); when the CLI cannot make them, an openssl fallback makes
// the same shapes (root -> intermediate -> leaf with one SPIFFE URI SAN, serverAuth + clientAuth), and
// the results say which source was used.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// Asynchronous so that Ctrl-C is handled (and everything stopped) even while certificates are being made.
const execFileAsync = promisify(execFile);

export type BenchKeyType = 'ec-p256' | 'rsa-2048';
export const BENCH_KEY_TYPES: readonly BenchKeyType[] = ['ec-p256', 'rsa-2048'];

export const TRUST_DOMAIN = 'bench.local';
export const SERVER_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/server`;
export const CLIENT_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/client`;

/** A workload directory as written by `meshward cert issue`: tls.crt (leaf + intermediate), tls.key, ca.crt. */
export interface WorkloadFiles { dir: string; crt: string; key: string; ca: string }

export interface BenchCertificates {
  source: string;                                   // "meshward CLI" or "openssl (CLI unavailable: …)"
  server: Record<BenchKeyType, WorkloadFiles>;
  client: Record<BenchKeyType, WorkloadFiles>;
  rotations: WorkloadFiles[];                       // distinct ec-p256 server certificates, same identity, used in turn
}

function workload(dir: string): WorkloadFiles {
  return { dir, crt: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key'), ca: path.join(dir, 'ca.crt') };
}

/**
 * Runs a tool on every core: the benchmark script itself is pinned to the client core, but making
 * certificates is not measured and should not take longer than it must.
 */
async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const allCores = `0-${Math.max(0, os.cpus().length - 1)}`;
  const { stdout } = await execFileAsync('taskset', ['-c', allCores, cmd, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return stdout;
}

/** Fails unless the chain in w verifies against its ca.crt for the purpose and the key matches. */
async function checkWorkload(w: WorkloadFiles): Promise<void> {
  for (const f of [w.crt, w.key, w.ca]) {
    if (!fs.existsSync(f)) throw new Error(`${f} was not written`);
  }
  await run('openssl', ['verify', '-CAfile', w.ca, '-untrusted', w.crt, w.crt]);
  const certPub = await run('openssl', ['x509', '-in', w.crt, '-noout', '-pubkey']);
  const keyPub = await run('openssl', ['pkey', '-in', w.key, '-pubout']);
  if (certPub.trim() !== keyPub.trim()) throw new Error(`${w.key} does not match ${w.crt}`);
}

// ---- the repo's CLI --------------------------------------------------------------------------------

async function cliIssue(meshward: string, caDir: string, id: string, kt: BenchKeyType, out: string): Promise<WorkloadFiles> {
  await run('node', [meshward, 'cert', 'issue', '--ca-dir', caDir, '--spiffe-id', id, '--dns', 'localhost',
    '--ip', '127.0.0.1', '--ttl', '4h', '--key-type', kt, '--out', out]);
  const w = workload(out);
  await checkWorkload(w);
  return w;
}

async function fromCli(root: string, work: string, rotations: number, rsaClientKey: BenchKeyType): Promise<BenchCertificates> {
  const meshward = path.join(root, 'bin', 'meshward.js');
  const server = {} as Record<BenchKeyType, WorkloadFiles>;
  const client = {} as Record<BenchKeyType, WorkloadFiles>;
  for (const kt of BENCH_KEY_TYPES) {
    const caDir = path.join(work, `ca-${kt}`);
    await run('node', [meshward, 'ca', 'init', '--dir', caDir, '--trust-domain', TRUST_DOMAIN, '--key-type', kt]);
    server[kt] = await cliIssue(meshward, caDir, SERVER_ID, kt, path.join(work, `server-${kt}`));
    client[kt] = await cliIssue(meshward, caDir, CLIENT_ID, clientKeyType(kt, rsaClientKey), path.join(work, `client-${kt}`));
  }
  const rot: WorkloadFiles[] = [];
  for (let i = 0; i < rotations; i++) {
    rot.push(await cliIssue(meshward, path.join(work, 'ca-ec-p256'), SERVER_ID, 'ec-p256', path.join(work, `rotation-${i}`)));
  }
  return { source: 'meshward CLI (ca init, cert issue)', server, client, rotations: rot };
}

// ---- openssl fallback (used only while the CLI cannot issue) ----------------------------------------

async function opensslKey(kt: BenchKeyType, file: string): Promise<void> {
  const opts = kt === 'ec-p256'
    ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
    : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  await run('openssl', ['genpkey', ...opts, '-out', file]);
  fs.chmodSync(file, 0o600);
}

interface OpensslCa { dir: string; kt: BenchKeyType; intermediateCrt: string; intermediateKey: string; rootCrt: string }

/** 128 random bits with the top bit clear, so the DER INTEGER is positive without a pad. */
function positiveSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x01;
  return b;
}

async function opensslSign(ca: { crt: string; key: string }, csr: string, out: string, extensions: string, dir: string): Promise<void> {
  const ext = path.join(dir, `ext-${path.basename(out)}.cnf`);
  fs.writeFileSync(ext, `[v3]\n${extensions}\n`);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-set_serial',
    `0x${positiveSerial().toString('hex')}`,
    '-days', '2', '-sha256', '-extfile', ext, '-extensions', 'v3', '-out', out]);
}

async function opensslCa(work: string, kt: BenchKeyType): Promise<OpensslCa> {
  const dir = path.join(work, `ca-${kt}`);
  fs.mkdirSync(dir, { recursive: true });
  const rootKey = path.join(dir, 'root.key');
  const rootCrt = path.join(dir, 'root.crt');
  await opensslKey(kt, rootKey);
  await run('openssl', ['req', '-x509', '-new', '-key', rootKey, '-subj', `/O=${TRUST_DOMAIN}/CN=bench root ${kt}`,
    '-days', '30', '-sha256', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:1',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', rootCrt]);
  const intKey = path.join(dir, 'intermediate.key');
  const intCsr = path.join(dir, 'intermediate.csr');
  const intCrt = path.join(dir, 'intermediate.crt');
  await opensslKey(kt, intKey);
  await run('openssl', ['req', '-new', '-key', intKey, '-subj', `/O=${TRUST_DOMAIN}/CN=bench intermediate ${kt}`, '-out', intCsr]);
  await opensslSign({ crt: rootCrt, key: rootKey }, intCsr, intCrt,
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' +
    `nameConstraints=critical,permitted;URI:${TRUST_DOMAIN}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid`, dir);
  return { dir, kt, intermediateCrt: intCrt, intermediateKey: intKey, rootCrt };
}

async function opensslIssue(ca: OpensslCa, id: string, kt: BenchKeyType, out: string): Promise<WorkloadFiles> {
  fs.mkdirSync(out, { recursive: true });
  const w = workload(out);
  await opensslKey(kt, w.key);
  const csr = path.join(out, 'leaf.csr');
  const leaf = path.join(out, 'leaf.crt');
  await run('openssl', ['req', '-new', '-key', w.key, '-subj', '/', '-out', csr]);
  const usage = kt === 'rsa-2048' ? 'digitalSignature,keyEncipherment' : 'digitalSignature';
  await opensslSign({ crt: ca.intermediateCrt, key: ca.intermediateKey }, csr, leaf,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,${usage}\nextendedKeyUsage=serverAuth,clientAuth\n` +
    `subjectAltName=critical,URI:${id},DNS:localhost,IP:127.0.0.1\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid`, out);
  fs.writeFileSync(w.crt, fs.readFileSync(leaf, 'utf8') + fs.readFileSync(ca.intermediateCrt, 'utf8'));
  fs.copyFileSync(ca.rootCrt, w.ca);
  fs.rmSync(csr);
  fs.rmSync(leaf);
  await checkWorkload(w);
  return w;
}

async function fromOpenssl(work: string, rotations: number, rsaClientKey: BenchKeyType, why: string): Promise<BenchCertificates> {
  const server = {} as Record<BenchKeyType, WorkloadFiles>;
  const client = {} as Record<BenchKeyType, WorkloadFiles>;
  const cas = {} as Record<BenchKeyType, OpensslCa>;
  for (const kt of BENCH_KEY_TYPES) {
    cas[kt] = await opensslCa(work, kt);
    server[kt] = await opensslIssue(cas[kt], SERVER_ID, kt, path.join(work, `server-${kt}`));
    client[kt] = await opensslIssue(cas[kt], CLIENT_ID, clientKeyType(kt, rsaClientKey), path.join(work, `client-${kt}`));
  }
  const rot: WorkloadFiles[] = [];
  for (let i = 0; i < rotations; i++) {
    rot.push(await opensslIssue(cas['ec-p256'], SERVER_ID, 'ec-p256', path.join(work, `rotation-${i}`)));
  }
  return { source: `openssl fallback (meshward CLI unavailable: ${why})`, server, client, rotations: rot };
}

function reasonOf(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr && e.stderr.trim()) || e.message || String(err);
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  // Prefer the line that says what went wrong over a stack frame or a source excerpt.
  const said = lines.find((l) => /error|cannot|failed|not found|refus/i.test(l)) ?? lines[0];
  return said?.slice(0, 200) ?? 'unknown error';
}

/**
 * The client's key type in each case. In the RSA-2048 case the client key is EC P-256 by default (still
 * issued by the RSA CA): an RSA client signs as slowly as the RSA server, so wrk's core would become the
 * bottleneck and every proxy would measure the same. BENCH_RSA_CLIENT_KEY=rsa-2048 makes both sides RSA.
 */
function clientKeyType(kt: BenchKeyType, rsaClientKey: BenchKeyType): BenchKeyType {
  return kt === 'rsa-2048' ? rsaClientKey : kt;
}

/** Makes every certificate the benchmark needs under work/, with the CLI when it works. */
export async function makeCertificates(root: string, work: string, rotations: number, rsaClientKey: BenchKeyType = 'ec-p256'): Promise<BenchCertificates> {
  const cliWork = path.join(work, 'cli');
  fs.rmSync(cliWork, { recursive: true, force: true });
  fs.mkdirSync(cliWork, { recursive: true });
  try {
    return await fromCli(root, cliWork, rotations, rsaClientKey);
  } catch (err) {
    const why = reasonOf(err);
    const sslWork = path.join(work, 'openssl');
    fs.rmSync(sslWork, { recursive: true, force: true });
    fs.mkdirSync(sslWork, { recursive: true });
    return await fromOpenssl(sslWork, rotations, rsaClientKey, why);
  }
}
