// The Authority: the rules of issuance for one CA directory (DESIGN.md §1.7) and nothing of transport.
// It issues (with a key it makes, or by signing a CSR), renews, revokes, publishes CRLs and the trust
// bundle, and rotates its chain. Every method validates its whole input before it writes anything, so a
// refusal leaves the CA directory byte-for-byte unchanged. Time is passed in; private keys never appear in
// an error or a log line.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { MeshwardError, invalid } from '../errors.js';
import { formatDuration } from '../duration.js';
import { writeFilesAtomic, type FileToWrite } from '../files.js';
import { CertificateSigner, parseCertificate, selfSign } from '../pki/certificate.js';
import { buildCrl, REVOCATION_REASONS, type RevocationReason } from '../pki/crl.js';
import { parseCsr } from '../pki/csr.js';
import { exportPrivateKeyPem, generateKeyPair, keyTypeOf, parseKeyType, type KeyType } from '../pki/keys.js';
import type { DistinguishedName } from '../pki/name.js';
import { encodePem } from '../pki/pem.js';
import { DEFAULT_MAX_TTL_MS, DEFAULT_TTL_MS, formatCaConfig, loadCaConfig, validateTrustDomain, type CaConfig } from './config.js';
import { IssuerSet, formatTime, type Issuer } from './issuers.js';
import { CaLayout } from './layout.js';
import {
  BACKDATE_MS, INTERMEDIATE_TTL_MS, ROOT_TTL_MS, intermediateTemplate, leafTemplate, leafValidity, normalizeSerialHex,
  randomSerial, rootTemplate, serialHexOf,
} from './profile.js';
import { IssuanceRules, checkDnsNames, checkIpAddresses, checkSubjectField } from './rules.js';
import { CaStore, type CaCertificateRow, type CaRole } from './store.js';
import { keyFilesIn, looseKeyFiles, looseKeyWarning } from '../key-permissions.js';

/** CRLs are valid this long; `meshward ca crl` (or the CA service) publishes fresh ones before then. */
export const CRL_VALIDITY_MS = 7 * 24 * 3_600_000;

export interface AuthorityInitOptions {
  trustDomain: string;
  keyType?: KeyType;
  rootTtlMs?: number;
  intermediateTtlMs?: number;
  /** Replace an existing CA in the directory (destroys its keys). */
  force?: boolean;
}

export interface IssueRequest {
  spiffeId: string;
  dns?: string[];
  ips?: string[];
  cn?: string;
  ou?: string[];
  ttlMs?: number;
  keyType?: KeyType;
}

export interface SignCsrOptions {
  ttlMs?: number;
  /** The identity the caller authenticated as: the CSR must ask for exactly this one. */
  expectedSpiffeId?: string;
  /**
   * Copy the CSR's subject (CN, OU, O, C) into the certificate. Off by default: a workload must not pick
   * its own CN/OU, which policies can match on; the CLI turns it on for an operator who holds the CA.
   */
  subjectFromCsr?: boolean;
}

export interface IssuedCertificate {
  serialHex: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  certificatePem: string;
  /** Leaf + intermediate. */
  chainPem: string;
  chainDer: Buffer[];
  /** Every root still trusted. */
  bundlePem: string;
}

export interface IssuedCertificateWithKey extends IssuedCertificate {
  privateKeyPem: string;
}

export interface Revocation {
  serialHex: string;
  spiffeId: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export type CertificateStatus =
  | { status: 'unknown' }
  | { status: 'valid' | 'expired' | 'revoked'; spiffeId: string; notAfter: Date; revokedAt?: Date; reason?: string };

export interface CertificateListing {
  serialHex: string;
  spiffeId: string;
  issuerSerialHex: string;
  notBefore: Date;
  notAfter: Date;
  status: 'valid' | 'expired' | 'revoked';
  revokedAt?: Date;
  reason?: string;
}

export interface AuthorityListing {
  role: CaRole;
  serialHex: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** signing: the chain that issues now; trusted: kept for older leaves; pending: signs from activatesAt. */
  status: 'signing' | 'trusted' | 'pending' | 'retired';
  activatesAt: Date;
}

export interface RotationResult {
  root?: { serialHex: string; notAfter: Date };
  intermediate: { serialHex: string; notAfter: Date };
  activatesAt: Date;
}

export interface FinishResult {
  retired: { role: CaRole; serialHex: string }[];
}

const CA_FILES = ['config.yaml', 'ca.db', 'root.crt', 'root.key', 'intermediate.crt', 'intermediate.key', 'bundle.crt', 'issuers'];

function ms(d: Date): number {
  return d.getTime();
}

/** Checks that `dir` is a CA directory this process can use, with errors that say what to do. */
function checkCaDirectory(layout: CaLayout): void {
  const dir = layout.dir;
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MeshwardError('not_found', `there is no CA directory at ${dir}: create one with meshward ca init --dir ${dir} --trust-domain DOMAIN`);
    if (code === 'EACCES') throw new MeshwardError('permission_denied', `cannot reach the CA directory ${dir}: permission denied`);
    throw new MeshwardError('unavailable', `cannot read the CA directory ${dir}: ${(err as Error).message}`);
  }
  if (!isDir) throw invalid(`${dir} is a file, not a CA directory: point --dir/--ca-dir at the folder made by meshward ca init`);
  try {
    accessSync(dir, constants.R_OK | constants.X_OK);
  } catch {
    throw new MeshwardError('permission_denied', `cannot read the CA directory ${dir}: permission denied (run as its owner or fix its mode)`);
  }
  if (!existsSync(layout.database)) {
    throw new MeshwardError('not_found', `${dir} is not a CA directory (it has no ca.db): create one with meshward ca init --dir ${dir} --trust-domain DOMAIN`);
  }
}

export class Authority {
  readonly layout: CaLayout;
  private issuers: IssuerSet;
  private generation: bigint;
  private readonly rules: IssuanceRules;

  private constructor(layout: CaLayout, readonly config: CaConfig, readonly store: CaStore) {
    this.layout = layout;
    this.rules = new IssuanceRules(config);
    this.generation = store.counter('ca_generation');
    this.issuers = new IssuerSet(layout, store.caCertificates());
  }

  get dir(): string {
    return this.layout.dir;
  }

  get trustDomain(): string {
    return this.config.trustDomain;
  }

  /** Creates a new CA (root + intermediate, config, store, bundle, CRLs) in `dir`. */
  static init(dir: string, opts: AuthorityInitOptions, now: Date): Authority {
    const layout = new CaLayout(dir);
    const trustDomain = validateTrustDomain(opts.trustDomain);
    const keyType = parseKeyType(opts.keyType ?? 'ec-p256');
    const rootTtlMs = opts.rootTtlMs ?? ROOT_TTL_MS;
    const intermediateTtlMs = opts.intermediateTtlMs ?? INTERMEDIATE_TTL_MS;
    for (const [what, v] of [['root TTL', rootTtlMs], ['intermediate TTL', intermediateTtlMs]] as const) {
      if (!Number.isFinite(v) || v <= 0) throw invalid(`${what} must be positive: use a duration such as 8760h`);
    }
    if (intermediateTtlMs <= DEFAULT_MAX_TTL_MS) {
      throw invalid(`intermediate TTL ${formatDuration(intermediateTtlMs)} must be longer than the maximum leaf TTL ${formatDuration(DEFAULT_MAX_TTL_MS)}`);
    }
    if (intermediateTtlMs > rootTtlMs) {
      throw invalid(`intermediate TTL ${formatDuration(intermediateTtlMs)} is longer than the root TTL ${formatDuration(rootTtlMs)}: an intermediate cannot outlive its root`);
    }
    Authority.checkInitTarget(layout, opts.force === true);

    const config: CaConfig = {
      trustDomain, defaultTtlMs: DEFAULT_TTL_MS, maxTtlMs: DEFAULT_MAX_TTL_MS, keyType, allowedSpiffeIds: [`spiffe://${trustDomain}/**`],
    };
    const chain = Authority.makeChain(layout, trustDomain, keyType, undefined, now, rootTtlMs, intermediateTtlMs, now);

    // Everything is computed: from here on, write.
    if (opts.force) {
      for (const f of [layout.database, ...layout.databaseCompanions]) rmSync(f, { force: true });
      rmSync(layout.issuersDir, { recursive: true, force: true });
    }
    try {
      mkdirSync(layout.issuersDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new MeshwardError('permission_denied', `cannot create the CA directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    writeFilesAtomic([
      ...chain.files,
      { path: layout.config, data: formatCaConfig(config) },
      ...Authority.currentChainFiles(layout, chain.rootPem, chain.rootKeyPem, chain.intermediatePem, chain.intermediateKeyPem),
      { path: layout.bundle, data: chain.rootPem },
    ]);
    const store = CaStore.create(layout.database);
    try {
      store.transaction(() => {
        for (const row of chain.rows) store.insertCaCertificate(row);
        store.nextCounter('ca_generation');
      });
      const authority = new Authority(layout, config, store);
      authority.writeCrl(now);
      return authority;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  private static checkInitTarget(layout: CaLayout, force: boolean): void {
    const dir = layout.dir;
    let st;
    try {
      st = statSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // created below
      throw new MeshwardError('permission_denied', `cannot reach ${dir}: ${code ?? (err as Error).message}`);
    }
    if (!st.isDirectory()) throw invalid(`${dir} exists and is a file: choose a directory for the CA`);
    try {
      accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch {
      throw new MeshwardError('permission_denied', `cannot write to ${dir}: permission denied`);
    }
    const found = CA_FILES.filter((f) => existsSync(`${dir}/${f}`));
    if (found.length > 0 && !force) {
      throw new MeshwardError('already_exists', `${dir} already holds a CA (${found.join(', ')}): pass --force to replace it, which destroys its keys`);
    }
  }

  /**
   * Opens an existing CA directory. Key files that the group or others may read are used, but each is
   * reported through `opts.warn` (default: a `meshward: warning:` line on stderr).
   */
  static open(dir: string, opts: { warn?: (message: string) => void } = {}): Authority {
    const layout = new CaLayout(dir);
    checkCaDirectory(layout);
    const warn = opts.warn ?? ((m: string) => process.stderr.write(`meshward: warning: ${m}\n`));
    for (const f of looseKeyFiles([layout.rootKey, layout.intermediateKey, ...keyFilesIn(layout.issuersDir)])) warn(looseKeyWarning(f));
    const config = loadCaConfig(layout.config);
    const store = CaStore.open(layout.database);
    try {
      return new Authority(layout, config, store);
    } catch (err) {
      store.close();
      throw err;
    }
  }

  close(): void {
    this.store.close();
  }

  /** Re-reads the CA certificates when another process (the CLI beside `ca serve`) rotated or retired some. */
  refresh(): void {
    const generation = this.store.counter('ca_generation');
    if (generation !== this.generation) {
      this.issuers = new IssuerSet(this.layout, this.store.caCertificates());
      this.generation = generation;
    }
  }

  // Issuance

  /** Makes a key of the requested type and a certificate for it. */
  issue(req: IssueRequest, now: Date): IssuedCertificateWithKey {
    this.refresh();
    const spiffeId = this.rules.spiffeId(req.spiffeId);
    const dns = checkDnsNames(req.dns ?? []);
    const ips = checkIpAddresses(req.ips ?? []);
    const subject: DistinguishedName = {};
    if (req.cn !== undefined) subject.cn = checkSubjectField(req.cn, 'CN');
    if (req.ou !== undefined && req.ou.length > 0) subject.ou = req.ou.map((ou) => checkSubjectField(ou, 'OU'));
    const ttlMs = this.rules.ttl(req.ttlMs);
    const keyType = parseKeyType(req.keyType ?? this.config.keyType);
    this.issuers.signingChain(now); // refuse before making a key when the chain cannot sign
    const keys = generateKeyPair(keyType);
    const issued = this.sign({ publicKey: keys.publicKey, keyType, spiffeId, dns, ips, subject, ttlMs }, now);
    return { ...issued, privateKeyPem: exportPrivateKeyPem(keys.privateKey) };
  }

  /** Signs a PKCS#10 CSR (DER): identity = its one URI SAN; the CSR's signature proves key possession. */
  signCsr(csrDer: Buffer, opts: SignCsrOptions, now: Date): IssuedCertificate {
    this.refresh();
    const csr = parseCsr(csrDer);
    if (csr.uris.length !== 1) {
      throw invalid(`the CSR has ${csr.uris.length} URI SANs: it must carry exactly one, the SPIFFE ID (e.g. -addext "subjectAltName=URI:spiffe://${this.trustDomain}/ns/NS/sa/SA")`);
    }
    const spiffeId = this.rules.spiffeId(csr.uris[0]!);
    if (opts.expectedSpiffeId !== undefined && opts.expectedSpiffeId !== spiffeId) {
      throw new MeshwardError('permission_denied', `the CSR asks for ${spiffeId} but the caller is ${opts.expectedSpiffeId}: a CSR may only ask for the caller's own identity`);
    }
    const keyType = keyTypeOf(csr.publicKey);
    const dns = checkDnsNames(csr.dns);
    const ips = checkIpAddresses(csr.ips);
    const subject: DistinguishedName = opts.subjectFromCsr ? csr.subject : {};
    const ttlMs = this.rules.ttl(opts.ttlMs);
    return this.sign({ publicKey: csr.publicKey, keyType, spiffeId, dns, ips, subject, ttlMs }, now);
  }

  /** Same identity, names and public key, fresh validity; refused for a certificate revoked, expired or not issued here. */
  renew(certDer: Buffer, opts: { ttlMs?: number }, now: Date): IssuedCertificate {
    this.refresh();
    const cert = parseCertificate(certDer);
    const row = this.store.certificate(cert.serialHex);
    if (!row || !row.der.equals(cert.der)) {
      throw new MeshwardError('not_found', `certificate ${cert.serialHex} was not issued by this CA (${this.dir}): renew it with the CA that issued it`);
    }
    if (row.status === 'revoked') {
      throw new MeshwardError('permission_denied', `certificate ${row.serialHex} (${row.spiffeId}) was revoked at ${formatTime(row.revokedAt!)} (${row.reason}): it cannot be renewed; issue a new one`);
    }
    if (ms(row.notAfter) <= ms(now)) {
      throw new MeshwardError('failed_precondition', `certificate ${row.serialHex} (${row.spiffeId}) expired at ${formatTime(row.notAfter)}: an expired certificate cannot be renewed; issue a new one`);
    }
    if (cert.uris.length !== 1) throw invalid(`certificate ${row.serialHex} does not carry exactly one URI SAN`);
    const spiffeId = this.rules.spiffeId(cert.uris[0]!);
    const keyType = keyTypeOf(cert.publicKey);
    const originalTtl = ms(cert.notAfter) - ms(cert.notBefore) - BACKDATE_MS;
    const ttlMs = opts.ttlMs !== undefined ? this.rules.ttl(opts.ttlMs) : Math.min(Math.max(originalTtl, 1000), this.config.maxTtlMs);
    return this.sign({ publicKey: cert.publicKey, keyType, spiffeId, dns: cert.dns, ips: cert.ips, subject: cert.subject, ttlMs }, now);
  }

  /** The common end of every issuance: validity, TBS, signature, store insert. Input is already validated. */
  private sign(o: {
    publicKey: KeyObject; keyType: KeyType; spiffeId: string; dns: string[]; ips: string[]; subject: DistinguishedName; ttlMs: number;
  }, now: Date): IssuedCertificate {
    const chain = this.issuers.signingChain(now);
    this.promoteDue(now);
    const serial = randomSerial();
    const serialHex = serialHexOf(serial);
    const validity = leafValidity(now, o.ttlMs, chain.intermediate.cert.notAfter);
    const der = chain.signer.sign(leafTemplate({ serial, publicKey: o.publicKey, keyType: o.keyType, spiffeId: o.spiffeId, dns: o.dns, ips: o.ips, subject: o.subject, validity }));
    this.store.insertCertificate(serialHex, o.spiffeId, chain.intermediate.row.serialHex, validity.notBefore, validity.notAfter, der);
    const certificatePem = encodePem('CERTIFICATE', der);
    return {
      serialHex,
      spiffeId: o.spiffeId,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      certificatePem,
      chainPem: certificatePem + chain.intermediate.pem,
      chainDer: [der, chain.intermediate.row.der],
      bundlePem: this.issuers.bundlePem(),
    };
  }

  // Revocation

  /** Marks a certificate revoked and rewrites D/crl.pem. */
  revoke(serialText: string, reason: string, now: Date): Revocation {
    this.refresh();
    const serialHex = normalizeSerialHex(serialText);
    if (serialHex === undefined) throw invalid(`"${serialText.slice(0, 60)}" is not a serial number: give it in hex as meshward ca list prints it`);
    if (!(REVOCATION_REASONS as readonly string[]).includes(reason)) {
      throw invalid(`"${reason}" is not a revocation reason: use one of ${REVOCATION_REASONS.join(', ')}`);
    }
    const row = this.store.certificate(serialHex);
    if (!row) {
      if (this.issuers.bySerial(serialHex)) throw invalid(`${serialHex} is one of this CA's own certificates: replace it with meshward ca rotate instead of revoking it`);
      throw new MeshwardError('not_found', `no certificate with serial ${serialHex} was issued by this CA: meshward ca list --dir ${this.dir} shows them`);
    }
    if (row.status === 'revoked') {
      throw new MeshwardError('failed_precondition', `certificate ${serialHex} (${row.spiffeId}) is already revoked since ${formatTime(row.revokedAt!)} (${row.reason})`);
    }
    this.promoteDue(now);
    const crl = this.store.transaction(() => {
      this.store.revoke(serialHex, now, reason);
      return this.buildCrlPem(now);
    });
    writeFilesAtomic([{ path: this.layout.crl, data: crl }]);
    return { serialHex, spiffeId: row.spiffeId, revokedAt: now, reason: reason as RevocationReason };
  }

  /** Fresh CRLs, one per CA certificate still trusted (roots included: OpenSSL needs one for each), also written to D/crl.pem. */
  crlPem(now: Date): string {
    this.refresh();
    this.promoteDue(now);
    return this.writeCrl(now);
  }

  private writeCrl(now: Date): string {
    const crl = this.store.transaction(() => this.buildCrlPem(now));
    writeFilesAtomic([{ path: this.layout.crl, data: crl }]);
    return crl;
  }

  /** Runs inside a store transaction (CRL numbers are taken from the counters table). */
  private buildCrlPem(now: Date): string {
    const thisUpdate = new Date(ms(now) - BACKDATE_MS);
    const nextUpdate = new Date(ms(now) + CRL_VALIDITY_MS);
    return this.issuers.trusted().map((issuer) => {
      const revoked = issuer.row.role === 'intermediate'
        ? this.store.revokedBy(issuer.row.serialHex).map((r) => ({ serialHex: r.serialHex, revokedAt: r.revokedAt, reason: r.reason as RevocationReason }))
        : [];
      const der = buildCrl({
        issuer: issuer.cert, issuerKey: this.issuers.key(issuer), crlNumber: this.store.nextCounter('crl_number'), thisUpdate, nextUpdate, revoked,
      });
      return encodePem('X509 CRL', der);
    }).join('');
  }

  // Reading

  /** Every root still trusted: the content of bundle.crt. */
  trustBundlePem(): string {
    this.refresh();
    return this.issuers.bundlePem();
  }

  certificateStatus(serialText: string, now: Date): CertificateStatus {
    const serialHex = normalizeSerialHex(serialText);
    const row = serialHex === undefined ? undefined : this.store.certificateState(serialHex);
    if (!row) return { status: 'unknown' };
    if (row.status === 'revoked') return { status: 'revoked', spiffeId: row.spiffeId, notAfter: row.notAfter, revokedAt: row.revokedAt!, reason: row.reason ?? 'unspecified' };
    return { status: ms(row.notAfter) <= ms(now) ? 'expired' : 'valid', spiffeId: row.spiffeId, notAfter: row.notAfter };
  }

  /** Issued certificates, oldest first. */
  list(now: Date = new Date()): CertificateListing[] {
    this.refresh();
    return this.store.certificates().map((r) => ({
      serialHex: r.serialHex, spiffeId: r.spiffeId, issuerSerialHex: r.issuerSerialHex, notBefore: r.notBefore, notAfter: r.notAfter,
      status: r.status === 'revoked' ? 'revoked' : ms(r.notAfter) <= ms(now) ? 'expired' : 'valid',
      ...(r.revokedAt ? { revokedAt: r.revokedAt, reason: r.reason ?? 'unspecified' } : {}),
    }));
  }

  /** The CA's own certificates, oldest first. */
  authorities(now: Date = new Date()): AuthorityListing[] {
    this.refresh();
    let signing: Issuer[] = [];
    try {
      const c = this.issuers.current(now);
      signing = [c.root, c.intermediate];
    } catch {
      // no active chain: every certificate is listed by its own status
    }
    return this.issuers.all.map((i) => ({
      role: i.row.role, serialHex: i.row.serialHex, subject: i.cert.subjectString, notBefore: i.cert.notBefore, notAfter: i.cert.notAfter,
      status: i.row.status === 'retired' ? 'retired' : signing.includes(i) ? 'signing' : ms(i.row.activatesAt) > ms(now) ? 'pending' : 'trusted',
      activatesAt: i.row.activatesAt,
    }));
  }

  // Rotation

  /**
   * A new intermediate under the current root, or with `root` a new root and intermediate. The new root
   * joins bundle.crt at once; the new chain signs from now + activateInMs (default for a root rotation:
   * the default TTL, so every workload has renewed and fetched the new bundle before a leaf depends on it).
   */
  rotate(opts: { root?: boolean; activateInMs?: number }, now: Date): RotationResult {
    this.refresh();
    const pending = this.issuers.pending(now);
    if (pending.length > 0) {
      throw new MeshwardError('failed_precondition', `a rotation is already pending: the new chain signs from ${formatTime(pending[0]!.row.activatesAt)}; rotate again after that`);
    }
    const activateInMs = opts.activateInMs ?? (opts.root ? this.config.defaultTtlMs : 0);
    if (!Number.isFinite(activateInMs) || activateInMs < 0) throw invalid('the activation delay must be zero or positive: use a duration such as 0s or 1h');
    const current = this.issuers.current(now);
    if (!opts.root && ms(current.root.cert.notAfter) <= ms(now) + DEFAULT_MAX_TTL_MS) {
      throw new MeshwardError('failed_precondition', `the root CA ${current.root.row.serialHex} expires at ${formatTime(current.root.cert.notAfter)}: rotate the root with meshward ca rotate --root`);
    }
    const keyType = keyTypeOf(current.intermediate.cert.publicKey);
    const root = opts.root ? undefined : { issuer: current.root, key: this.issuers.key(current.root) };
    const activatesAt = new Date(ms(now) + activateInMs);
    const chain = Authority.makeChain(this.layout, this.trustDomain, keyType, root, now, ROOT_TTL_MS, INTERMEDIATE_TTL_MS, activatesAt);

    writeFilesAtomic(chain.files);
    this.store.transaction(() => {
      for (const row of chain.rows) this.store.insertCaCertificate(row);
      this.store.nextCounter('ca_generation');
    });
    this.refresh();
    const files: FileToWrite[] = [{ path: this.layout.bundle, data: this.issuers.bundlePem() }];
    if (activateInMs === 0) files.push(...this.currentChainFilesFor(now));
    writeFilesAtomic(files);
    this.writeCrl(now);
    const newRoot = chain.rows.find((r) => r.role === 'root');
    const intermediate = chain.rows.find((r) => r.role === 'intermediate')!;
    return {
      ...(newRoot ? { root: { serialHex: newRoot.serialHex, notAfter: newRoot.notAfter } } : {}),
      intermediate: { serialHex: intermediate.serialHex, notAfter: intermediate.notAfter },
      activatesAt,
    };
  }

  /** Retires the chains a rotation replaced, once their last leaf has expired; earlier it refuses and says when. */
  finishRotation(now: Date): FinishResult {
    this.refresh();
    const pending = this.issuers.pending(now);
    if (pending.length > 0) {
      const from = pending[0]!.row.activatesAt;
      throw new MeshwardError('failed_precondition', `the new chain signs only from ${formatTime(from)}: the old chain must stay trusted until its last certificate expires, no earlier than ${formatTime(new Date(ms(from) + this.config.maxTtlMs))}; run meshward ca rotate --finish then`);
    }
    const { root, intermediate } = this.issuers.current(now);
    const oldIntermediates = this.issuers.trusted('intermediate').filter((i) => i !== intermediate);
    const oldRoots = this.issuers.trusted('root').filter((r) => r !== root
      && this.issuers.trusted('intermediate').every((i) => i.row.issuerSerialHex !== r.row.serialHex || oldIntermediates.includes(i)));
    if (oldIntermediates.length === 0 && oldRoots.length === 0) {
      throw new MeshwardError('failed_precondition', `nothing to finish: only the current chain (root ${root.row.serialHex}, intermediate ${intermediate.row.serialHex}) is trusted`);
    }
    let live = 0;
    let last = 0;
    for (const i of oldIntermediates) {
      const l = this.store.liveCertificates(i.row.serialHex, now);
      live += l.count;
      if (l.lastNotAfter) last = Math.max(last, ms(l.lastNotAfter));
    }
    if (live > 0) {
      throw new MeshwardError('failed_precondition', `${live} certificate${live === 1 ? '' : 's'} issued by the previous chain ${live === 1 ? 'is' : 'are'} valid until ${formatTime(new Date(last))}: the old chain must stay trusted until then; run meshward ca rotate --finish after ${formatTime(new Date(last))} (in ${formatDuration(last - ms(now))})`);
    }
    const retiring = [...oldIntermediates, ...oldRoots];
    this.store.transaction(() => {
      for (const i of retiring) this.store.setCaStatus(i.row.serialHex, 'retired', now);
      this.store.nextCounter('ca_generation');
    });
    this.refresh();
    writeFilesAtomic([{ path: this.layout.bundle, data: this.issuers.bundlePem() }]);
    this.writeCrl(now);
    // A retired CA signs nothing again, not even a CRL: its key has no further use.
    for (const i of retiring) rmSync(this.layout.issuerKey(i.row.role, i.row.serialHex), { force: true });
    return { retired: retiring.map((i) => ({ role: i.row.role, serialHex: i.row.serialHex })) };
  }

  // Helpers

  /** Marks pending certificates whose time has come active and points the root and intermediate files at the chain that signs now. */
  private promoteDue(now: Date): void {
    const due = this.issuers.trusted().filter((i) => i.row.status === 'pending' && ms(i.row.activatesAt) <= ms(now));
    if (due.length === 0) return;
    writeFilesAtomic(this.currentChainFilesFor(now));
    this.store.transaction(() => {
      for (const i of due) this.store.setCaStatus(i.row.serialHex, 'active');
    });
    for (const i of due) i.row.status = 'active';
  }

  private currentChainFilesFor(now: Date): FileToWrite[] {
    const { root, intermediate } = this.issuers.current(now);
    const readKey = (i: Issuer) => readFileSync(this.layout.issuerKey(i.row.role, i.row.serialHex));
    return Authority.currentChainFiles(this.layout, root.pem, readKey(root), intermediate.pem, readKey(intermediate));
  }

  private static currentChainFiles(layout: CaLayout, rootPem: string, rootKey: string | Buffer, intermediatePem: string, intermediateKey: string | Buffer): FileToWrite[] {
    return [
      { path: layout.rootCert, data: rootPem },
      { path: layout.rootKey, data: rootKey, mode: 0o600 },
      { path: layout.intermediateCert, data: intermediatePem },
      { path: layout.intermediateKey, data: intermediateKey, mode: 0o600 },
    ];
  }

  /** Keys and certificates for a new intermediate (under `root`, or under a new root when it is undefined), and their files in D/issuers/. */
  private static makeChain(
    layout: CaLayout, trustDomain: string, keyType: KeyType, root: { issuer: Issuer; key: KeyObject } | undefined, now: Date,
    rootTtlMs: number, intermediateTtlMs: number, activatesAt: Date,
  ) {
    const status = ms(activatesAt) > ms(now) ? 'pending' as const : 'active' as const;
    const rows: Omit<CaCertificateRow, 'retiredAt'>[] = [];
    const files: FileToWrite[] = [];
    const add = (role: CaRole, issuerSerialHex: string | null, der: Buffer, privateKey: KeyObject) => {
      const cert = parseCertificate(der);
      const pem = encodePem('CERTIFICATE', der);
      const keyPem = exportPrivateKeyPem(privateKey);
      rows.push({
        serialHex: cert.serialHex, role, issuerSerialHex, der, notBefore: cert.notBefore, notAfter: cert.notAfter, status, activatesAt, createdAt: now,
      });
      files.push(
        { path: layout.issuerCert(role, cert.serialHex), data: pem },
        { path: layout.issuerKey(role, cert.serialHex), data: keyPem, mode: 0o600 },
      );
      return { cert, pem, keyPem };
    };
    let rootCert = root?.issuer.cert;
    let rootKey = root?.key;
    let rootPem = root?.issuer.pem ?? '';
    let rootKeyPem = '';
    if (!root) {
      const keys = generateKeyPair(keyType);
      const der = selfSign(rootTemplate({ trustDomain, publicKey: keys.publicKey, serial: randomSerial(), now, ttlMs: rootTtlMs }), keys.privateKey);
      const made = add('root', null, der, keys.privateKey);
      rootCert = made.cert;
      rootKey = keys.privateKey;
      rootPem = made.pem;
      rootKeyPem = made.keyPem;
    }
    const keys = generateKeyPair(keyType);
    const der = new CertificateSigner(rootCert!, rootKey!).sign(intermediateTemplate({
      trustDomain, publicKey: keys.publicKey, serial: randomSerial(), now, ttlMs: intermediateTtlMs, rootNotAfter: rootCert!.notAfter,
    }));
    const intermediate = add('intermediate', rootCert!.serialHex, der, keys.privateKey);
    return { rows, files, rootPem, rootKeyPem, intermediatePem: intermediate.pem, intermediateKeyPem: intermediate.keyPem };
  }
}
