// `meshward cert issue|sign|renew|revoke`: workload certificates from a CA directory. Thin: parse the
// flags, call the Authority, write the files atomically, say what happened in one or two lines.
import { statSync } from 'node:fs';
import { MeshwardError, invalid } from '../errors.js';
import { formatDuration, formatTime } from '../duration.js';
import { writeFilesAtomic } from '../files.js';
import { WorkloadLayout } from '../ca/layout.js';
import { parseCertificate } from '../pki/certificate.js';
import { REVOCATION_REASONS } from '../pki/crl.js';
import { KEY_TYPES, importPrivateKeyPem, publicKeyMatches, type KeyType } from '../pki/keys.js';
import { decodePem, readDerOrPem } from '../pki/pem.js';
import { caDirCommand, commandGroup, durationFlag, readInputFile, withAuthority } from './command-support.js';

function checkOutputDir(dir: string, flag: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw invalid(`${flag} ${dir} is a file: name a directory for tls.crt, tls.key and ca.crt`);
  } catch (err) {
    if (err instanceof MeshwardError) throw err; // a missing directory is created
  }
}

function validityWords(notBefore: Date, notAfter: Date): string {
  return `valid until ${formatTime(notAfter)} (${formatDuration(notAfter.getTime() - notBefore.getTime())} including 1m backdating)`;
}

function ttlOption(ttl: string | undefined): number | undefined {
  return ttl === undefined ? undefined : durationFlag(ttl, '--ttl');
}

const issueCommand = caDirCommand('cert issue', 'ca-dir', {
  describe: 'make a key and a certificate for a workload and write tls.crt, tls.key and ca.crt to --out',
  options: (y) => y
    .option('spiffe-id', { type: 'string', demandOption: true, describe: 'the identity, e.g. spiffe://example.org/ns/shop/sa/orders' })
    .option('dns', { type: 'string', array: true, describe: 'a DNS name to add (repeatable)' })
    .option('ip', { type: 'string', array: true, describe: 'an IP address to add (repeatable)' })
    .option('cn', { type: 'string', describe: 'subject common name' })
    .option('ou', { type: 'string', array: true, describe: 'subject organizational unit (repeatable)' })
    .option('ttl', { type: 'string', describe: 'lifetime, e.g. 1h (default: defaultTtl of config.yaml)' })
    .option('key-type', { type: 'string', choices: KEY_TYPES, describe: 'key type (default: keyType of config.yaml)' })
    .option('out', { type: 'string', demandOption: true, describe: 'the workload directory to write' }),
  handler: async (a) => {
    const ttlMs = ttlOption(a.ttl);
    checkOutputDir(a.out, '--out');
    const out = new WorkloadLayout(a.out);
    // The files are written inside the issuance's transaction: if they cannot be written (a full disk, a
    // folder made read-only meanwhile), the transaction rolls back and the store keeps no record of a
    // certificate nobody holds.
    const issued = await withAuthority(a['ca-dir'], a.store, (ca) => ca.store.transaction(async (tx) => {
      const issued = await ca.issue({
        spiffeId: a['spiffe-id'], dns: a.dns, ips: a.ip, cn: a.cn, ou: a.ou, ttlMs, keyType: a['key-type'] as KeyType | undefined,
      }, new Date(), tx);
      writeFilesAtomic([
        { path: out.certificate, data: issued.chainPem },
        { path: out.privateKey, data: issued.privateKeyPem, mode: 0o600 },
        { path: out.trustBundle, data: issued.bundlePem },
      ]);
      return issued;
    }));
    process.stdout.write(`issued ${issued.spiffeId}, serial ${issued.serialHex}, ${validityWords(issued.notBefore, issued.notAfter)}\n`
      + `wrote ${out.certificate}, ${out.privateKey}, ${out.trustBundle}\n`);
  },
});

/** The CSR's DER from a PEM (`CERTIFICATE REQUEST`, or the older `NEW CERTIFICATE REQUEST`) or DER file. */
function readCsr(data: Buffer): Buffer {
  try {
    return readDerOrPem(data, 'CERTIFICATE REQUEST')[0]!;
  } catch (err) {
    const legacy = data.includes('-----BEGIN NEW CERTIFICATE REQUEST-----')
      ? decodePem(data).find((b) => b.label === 'NEW CERTIFICATE REQUEST') : undefined;
    if (legacy) return legacy.der;
    throw err;
  }
}

const signCommand = caDirCommand('cert sign', 'ca-dir', {
  describe: 'sign a PKCS#10 CSR (PEM or DER); the identity is its one URI SAN; writes the chain (leaf + intermediate) to --out',
  options: (y) => y
    .option('csr', { type: 'string', demandOption: true, describe: 'the CSR file' })
    .option('ttl', { type: 'string', describe: 'lifetime, e.g. 1h (default: defaultTtl of config.yaml)' })
    .option('out', { type: 'string', demandOption: true, describe: 'the certificate chain file to write' }),
  handler: async (a) => {
    const ttlMs = ttlOption(a.ttl);
    const csrDer = readCsr(readInputFile(a.csr, '--csr'));
    try {
      if (statSync(a.out).isDirectory()) throw invalid(`--out ${a.out} is a directory: name the certificate file to write`);
    } catch (err) {
      if (err instanceof MeshwardError) throw err;
    }
    // The operator holding the CA vouches for the CSR, so its subject (CN/OU) is kept.
    const issued = await withAuthority(a['ca-dir'], a.store, (ca) => ca.signCsr(csrDer, { ttlMs, subjectFromCsr: true }, new Date()));
    writeFilesAtomic([{ path: a.out, data: issued.chainPem }]);
    process.stdout.write(`signed ${issued.spiffeId}, serial ${issued.serialHex}, ${validityWords(issued.notBefore, issued.notAfter)}\n`
      + `wrote ${a.out} (certificate + intermediate)\n`);
  },
});

const renewCommand = caDirCommand('cert renew', 'ca-dir', {
  describe: 'renew the certificate in --in (same identity and key, fresh validity); refused when revoked',
  options: (y) => y
    .option('in', { type: 'string', demandOption: true, describe: 'the workload directory holding tls.crt and tls.key' })
    .option('out', { type: 'string', describe: 'where to write the renewed files (default: --in)' }),
  handler: async (a) => {
    const input = new WorkloadLayout(a.in);
    const certDer = readDerOrPem(readInputFile(input.certificate, 'certificate'), 'CERTIFICATE')[0]!;
    const keyPem = readInputFile(input.privateKey, 'key');
    const cert = parseCertificate(certDer);
    const key = importPrivateKeyPem(keyPem);
    if (!publicKeyMatches(key, cert.publicKey)) throw invalid(`${input.privateKey} is not the key of ${input.certificate}: the workload directory is inconsistent`);
    const outDir = a.out ?? a.in;
    checkOutputDir(outDir, '--out');
    const renewed = await withAuthority(a['ca-dir'], a.store, (ca) => ca.renew(certDer, {}, new Date()));
    const out = new WorkloadLayout(outDir);
    writeFilesAtomic([
      { path: out.certificate, data: renewed.chainPem },
      { path: out.privateKey, data: keyPem, mode: 0o600 },
      { path: out.trustBundle, data: renewed.bundlePem },
    ]);
    process.stdout.write(`renewed ${renewed.spiffeId}: new serial ${renewed.serialHex} (was ${cert.serialHex}), ${validityWords(renewed.notBefore, renewed.notAfter)}\n`
      + `wrote ${out.certificate}, ${out.privateKey}, ${out.trustBundle}\n`);
  },
});

const revokeCommand = caDirCommand('cert revoke', 'ca-dir', {
  describe: 'revoke a certificate (by --serial or --cert) and rewrite the CA\'s crl.pem',
  options: (y) => y
    .option('serial', { type: 'string', describe: 'the serial number in hex, as meshward ca list prints it' })
    .option('cert', { type: 'string', describe: 'a certificate file (PEM or DER; the first certificate is revoked)' })
    .option('reason', { type: 'string', choices: REVOCATION_REASONS, default: 'unspecified', describe: 'RFC 5280 revocation reason' })
    .conflicts('serial', 'cert')
    .check((argv) => {
      if (argv.serial === undefined && argv.cert === undefined) throw new MeshwardError('usage', 'name the certificate to revoke with --serial HEX or --cert FILE');
      return true;
    }),
  handler: async (a) => {
    const serial = a.serial ?? parseCertificate(readDerOrPem(readInputFile(a.cert!, '--cert'), 'CERTIFICATE')[0]!).serialHex;
    const r = await withAuthority(a['ca-dir'], a.store, (ca) => ca.revoke(serial, a.reason, new Date()));
    process.stdout.write(`revoked ${r.spiffeId}, serial ${r.serialHex}, reason ${r.reason}, at ${formatTime(r.revokedAt)}\n`
      + `rewrote ${a['ca-dir']}/crl.pem: publish it to every sidecar that checks revocation\n`);
  },
});

export const certCommand = commandGroup('cert', 'workload certificates: issue, sign, renew, revoke',
  [issueCommand, signCommand, renewCommand, revokeCommand], 'name a cert command: issue, sign, renew or revoke');
