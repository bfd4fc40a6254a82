// The Authority: the rules of issuance for one CA (docs/ca-operations.md) and nothing of transport. Its
// keys and settings are files in the CA directory; its state is in a store (./store/: SQLite in D/ca.db or
// PostgreSQL). It issues (with a key it makes, or by signing a CSR), renews, revokes, publishes CRLs and
// the trust bundle, rotates its chain and makes bootstrap tokens. Every method validates its whole input
// before it writes anything, so a refusal leaves the CA directory and the store unchanged. Methods that
// touch the store are async; time is passed in; private keys never appear in an error or a log line.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { MeshwardError, invalid } from '../errors.js';
import { formatDuration, formatTime } from '../duration.js';
import { writeFilesAtomic, type FileToWrite } from '../files.js';
import { CertificateSigner, parseCertificate, selfSign } from '../pki/certificate.js';
import { buildCrl, REVOCATION_REASONS, type RevocationReason } from '../pki/crl.js';
import { parseCsr, parseCsrAsync } from '../pki/csr.js';
import { exportPrivateKeyPem, generateKeyPair, keyTypeOf, parseKeyType, type KeyType } from '../pki/keys.js';
import type { DistinguishedName } from '../pki/name.js';
import { encodePem } from '../pki/pem.js';
import { DEFAULT_CRL_VALIDITY_MS, DEFAULT_MAX_TTL_MS, DEFAULT_TTL_MS, formatCaConfig, loadCaConfig, validateTrustDomain, type CaConfig } from './config.js';
import { IssuerSet, type Issuer } from './issuers.js';
import { CaLayout } from './layout.js';
import {
  BACKDATE_MS, INTERMEDIATE_TTL_MS, ROOT_TTL_MS, intermediateTemplate, leafTemplate, leafValidity, normalizeSerialHex,
  randomSerial, rootTemplate, serialHexOf,
} from './profile.js';
import { IssuanceRules, checkDnsNames, checkIpAddresses, checkSubjectField } from './rules.js';
import { DEFAULT_ALLOWED_DNS_NAMES, SanPolicy } from './san-policy.js';
import { keyFilesIn, looseKeyFiles, looseKeyWarning } from '../key-permissions.js';
import { resolveStore, type StoreSpec } from './store/dsn.js';
import { openStore } from './store/open-store.js';
import { CertificateLookup, CertificateRecorder } from './store/batches.js';
import { isEmptyStore, type CaCertificateRow, type CaRole, type CertificateRow, type CaStore, type CrlDraft, type CrlWrite, type StoreOps, type StoredCrl } from './store/store.js';
import { createBootstrapToken, type CreatedToken } from './tokens.js';


export interface AuthorityInitOptions {
  trustDomain: string;
  keyType?: KeyType;
  rootTtlMs?: number;
  intermediateTtlMs?: number;
  /** Replace an existing CA in the directory (destroys its keys) and in the store. */
  force?: boolean;
  /** --store: a postgres:// URL or `sqlite`; default MESHWARD_STORE, else D/ca.db. */
  store?: string;
}

export interface AuthorityOpenOptions {
  /** Key files others may read (default: a `meshward: warning:` line on stderr). */
  warn?: (message: string) => void;
  /** The store's background errors, e.g. an idle PostgreSQL connection dropped (default: like `warn`). */
  storeWarn?: (message: string) => void;
  /** --store: overrides MESHWARD_STORE and `store:` in config.yaml. */
  store?: string;
  /**
   * Never write into the CA directory (`ca serve`: every replica's D may be a read-only Secret mount). A
   * pending chain still starts signing at its activation time, chosen in memory from the store's record;
   * root.* and intermediate.* are left as they are, for the next CLI command on a writable D to update.
   */
  readOnlyDir?: boolean;
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
  /** Record the certificate in this transaction (the one that redeemed the caller's bootstrap token). */
  tx?: StoreOps;
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

/** Thrown inside a CRL write to roll it back: another writer already made the CRL current. */
class CrlAlreadyCurrent extends MeshwardError {
  constructor() {
    super('failed_precondition', 'the CRL is already current');
  }
}

/** How many fresh random serials to try when one is already taken (128 random bits: never in practice). */
const SERIAL_ATTEMPTS = 3;

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
  if (!existsSync(layout.config) && !existsSync(layout.database)) {
    throw new MeshwardError('not_found', `${dir} is not a CA directory (it has no ca.db): create one with meshward ca init --dir ${dir} --trust-domain DOMAIN`);
  }
}

/** The SQLite store of an existing CA must be there: an absent ca.db is never created by a command other than ca init. */
function checkSqliteStoreExists(layout: CaLayout, spec: StoreSpec): void {
  if (spec.kind === 'sqlite' && !existsSync(spec.path)) {
    throw new MeshwardError('not_found', `${layout.dir} is not a CA directory (it has no ca.db): create one with meshward ca init --dir ${layout.dir} --trust-domain DOMAIN; if this CA keeps its state in PostgreSQL, pass --store postgres://… or set MESHWARD_STORE`);
  }
}

export class Authority {
  readonly layout: CaLayout;
  private issuers: IssuerSet;
  private generation: bigint;
  private readonly rules: IssuanceRules;
  private readonly sanPolicy: SanPolicy;
  private readonly recorder: CertificateRecorder;
  private readonly lookup: CertificateLookup;
  private generationRead: Promise<bigint> | undefined;
  /** See AuthorityOpenOptions.readOnlyDir. */
  private readOnlyDir = false;
  /** Issuances in flight (signCsr): see `pooled`. */
  private issuing = 0;
  /** The intermediate PEM intermediate.crt was last found to hold (chainFilesStale). */
  private chainFileChecked: string | undefined;

  private constructor(layout: CaLayout, readonly config: CaConfig, readonly store: CaStore, generation: bigint, issuers: IssuerSet) {
    this.layout = layout;
    this.recorder = new CertificateRecorder(store);
    this.lookup = new CertificateLookup(store);
    this.rules = new IssuanceRules(config);
    this.sanPolicy = SanPolicy.compile(config.allowedDnsNames, config.allowedIpAddresses);
    this.generation = generation;
    this.issuers = issuers;
  }

  private static async load(layout: CaLayout, config: CaConfig, store: CaStore): Promise<Authority> {
    const generation = await store.counter('ca_generation');
    return new Authority(layout, config, store, generation, new IssuerSet(layout, await store.caCertificates(), store.description));
  }

  get dir(): string {
    return this.layout.dir;
  }

  get trustDomain(): string {
    return this.config.trustDomain;
  }

  /** Creates a new CA (root + intermediate, config, store, bundle, CRLs) in `dir` and its store. */
  static async init(dir: string, opts: AuthorityInitOptions, now: Date): Promise<Authority> {
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
    // config.yaml is being written, so only --store and MESHWARD_STORE can name the store.
    const { spec } = resolveStore(dir, opts.store, undefined);

    const config: CaConfig = {
      trustDomain, defaultTtlMs: DEFAULT_TTL_MS, maxTtlMs: DEFAULT_MAX_TTL_MS, keyType, allowedSpiffeIds: [`spiffe://${trustDomain}/**`], allowedDnsNames: [...DEFAULT_ALLOWED_DNS_NAMES], allowedIpAddresses: [], crlValidityMs: DEFAULT_CRL_VALIDITY_MS,
      // A DSN is recorded only without a password: a secret belongs in MESHWARD_STORE or PGPASSWORD, not in a settings file.
      ...(spec.kind === 'postgres' && new URL(spec.dsn).password === '' ? { store: spec.dsn } : {}),
    };
    const chain = Authority.makeChain(layout, trustDomain, keyType, undefined, now, rootTtlMs, intermediateTtlMs, now);

    // A database that already holds a CA is refused like a directory that does (before any file is written).
    let store: CaStore | undefined;
    if (spec.kind === 'postgres') {
      store = await openStore(spec);
      try {
        const contents = await store.contents();
        if (!isEmptyStore(contents) && !opts.force) {
          throw new MeshwardError('already_exists', `${store.description} already holds a CA (${contents.caCertificates} CA certificates, ${contents.certificates} issued certificates, ${contents.tokens} tokens): pass --force to replace it, which forgets every certificate it issued`);
        }
      } catch (err) {
        await store.close();
        throw err;
      }
    }

    // Everything is computed: from here on, write.
    if (opts.force) {
      for (const f of [layout.database, ...layout.databaseCompanions]) rmSync(f, { force: true });
      rmSync(layout.issuersDir, { recursive: true, force: true });
    }
    try {
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
      store ??= await openStore(spec, { create: true });
      const opened = store;
      await opened.transaction(async (tx) => {
        if (opts.force) await tx.clear();
        for (const row of chain.rows) await tx.insertCaCertificate(row);
        await tx.nextCounter('ca_generation');
      });
      const authority = await Authority.load(layout, config, opened);
      await authority.crlPem(now);
      return authority;
    } catch (err) {
      await store?.close();
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
  static async open(dir: string, opts: AuthorityOpenOptions = {}): Promise<Authority> {
    const layout = new CaLayout(dir);
    checkCaDirectory(layout);
    const warn = opts.warn ?? ((m: string) => process.stderr.write(`meshward: warning: ${m}\n`));
    const config = existsSync(layout.config) || !existsSync(layout.database) ? loadCaConfig(layout.config) : undefined;
    const spec = Authority.storeOf(layout, opts.store, config);
    for (const f of looseKeyFiles([layout.rootKey, layout.intermediateKey, ...keyFilesIn(layout.issuersDir)])) warn(looseKeyWarning(f));
    const store = await openStore(spec, { warn: opts.storeWarn ?? warn });
    try {
      const authority = await Authority.load(layout, config ?? loadCaConfig(layout.config), store);
      authority.readOnlyDir = opts.readOnlyDir === true;
      return authority;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /** The store an existing CA directory uses: --store, MESHWARD_STORE, `store:` in config.yaml, else D/ca.db (which must exist). */
  static storeOf(layout: CaLayout, flag: string | undefined, config?: CaConfig): StoreSpec {
    const configStore = (config ?? (existsSync(layout.config) ? loadCaConfig(layout.config) : undefined))?.store;
    const { spec } = resolveStore(layout.dir, flag, configStore);
    checkSqliteStoreExists(layout, spec);
    return spec;
  }

  /** Where the state is, safe to print (a DSN without its password). */
  get storeDescription(): string {
    return this.store.description;
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** Re-reads the CA certificates when another process (the CLI beside `ca serve`, another replica) rotated or retired some. */
  async refresh(db: StoreOps = this.store): Promise<void> {
    // Concurrent callers outside a transaction share one read of the generation in flight (single flight):
    // under load that is one round trip for a whole burst of Sign calls instead of one each.
    const generation = db === this.store ? await (this.generationRead ??= this.store.counter('ca_generation').finally(() => {
      this.generationRead = undefined;
    })) : await db.counter('ca_generation');
    if (generation !== this.generation) {
      this.issuers = new IssuerSet(this.layout, await db.caCertificates(), this.store.description);
      this.generation = generation;
    }
  }

  // Issuance

  /** Makes a key of the requested type and a certificate for it. */
  async issue(req: IssueRequest, now: Date, tx?: StoreOps): Promise<IssuedCertificateWithKey> {
    // Inside the caller's transaction (tx) every read goes through it, as in signCsr.
    await this.refresh(tx);
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
    const issued = await this.sign({ publicKey: keys.publicKey, keyType, spiffeId, dns, ips, subject, ttlMs }, now, tx);
    return { ...issued, privateKeyPem: exportPrivateKeyPem(keys.privateKey) };
  }

  /** Signs a PKCS#10 CSR (DER): identity = its one URI SAN; the CSR's signature proves key possession. */
  async signCsr(csrDer: Buffer, opts: SignCsrOptions, now: Date): Promise<IssuedCertificate> {
    this.issuing += 1;
    try {
      return await this.signCsrCounted(csrDer, opts, now);
    } finally {
      this.issuing -= 1;
    }
  }

  /**
   * Whether the signature operations go to libuv's thread pool: when other issuances are in flight, so the
   * main thread serves them meanwhile. A lone issuance (the CLI, a quiet CA) has nothing to overlap with and
   * would only pay for the hand-offs (in a sequential benchmark about as much CPU again as the operations).
   */
  private get pooled(): boolean {
    return this.issuing > 1;
  }

  private async signCsrCounted(csrDer: Buffer, opts: SignCsrOptions, now: Date): Promise<IssuedCertificate> {
    // Inside the caller's transaction every read goes through it: SQLite's one connection is busy with it.
    await this.refresh(opts.tx);
    // Concurrent Sign calls check their CSR's signature on the thread pool, beside the main thread.
    const csr = this.pooled ? await parseCsrAsync(csrDer) : parseCsr(csrDer);
    if (csr.uris.length !== 1) {
      throw invalid(`the CSR has ${csr.uris.length} URI SANs: it must carry exactly one, the SPIFFE ID (e.g. -addext "subjectAltName=URI:spiffe://${this.trustDomain}/ns/NS/sa/SA")`);
    }
    const spiffeId = this.rules.spiffeId(csr.uris[0]!);
    if (opts.expectedSpiffeId !== undefined && opts.expectedSpiffeId !== spiffeId) {
      throw new MeshwardError('permission_denied', `the CSR asks for ${spiffeId} but the caller is ${opts.expectedSpiffeId}: a CSR may only ask for the caller's own identity`);
    }
    const keyType = csr.keyType;
    const dns = checkDnsNames(csr.dns);
    const ips = checkIpAddresses(csr.ips);
    // A workload (expectedSpiffeId: the caller's token or certificate) asks only for names its policy allows;
    // the operator's CLI holds the CA's keys and is not bound by it.
    if (opts.expectedSpiffeId !== undefined) {
      const refusal = this.sanPolicy.refusal(spiffeId, dns, ips);
      if (refusal !== undefined) throw new MeshwardError('permission_denied', `${refusal}: see docs/ca-operations.md, "Names a workload may ask for"`);
    }
    const subject: DistinguishedName = opts.subjectFromCsr ? csr.subject : {};
    const ttlMs = this.rules.ttl(opts.ttlMs);
    return this.sign({ publicKey: csr.publicKey, keyType, spiffeId, dns, ips, subject, ttlMs }, now, opts.tx);
  }

  /** Same identity, names and public key, fresh validity; refused for a certificate revoked, expired or not issued here. */
  async renew(certDer: Buffer, opts: { ttlMs?: number }, now: Date): Promise<IssuedCertificate> {
    await this.refresh();
    const cert = parseCertificate(certDer);
    const row = await this.store.certificate(cert.serialHex);
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

  /**
   * The common end of every issuance: validity, TBS, signature, store insert. Input is already validated.
   * The certificate is returned only after its row is written (committed, or in the caller's transaction),
   * so no certificate leaves the CA unrecorded. A serial already taken gets a fresh one and a new signature.
   */
  private async sign(o: {
    publicKey: KeyObject; keyType: KeyType; spiffeId: string; dns: string[]; ips: string[]; subject: DistinguishedName; ttlMs: number;
  }, now: Date, tx?: StoreOps): Promise<IssuedCertificate> {
    const chain = this.issuers.signingChain(now);
    await this.promoteDue(now, tx);
    const validity = leafValidity(now, o.ttlMs, chain.intermediate.cert.notAfter);
    let serialHex = '';
    let der: Buffer | undefined;
    for (let attempt = 1; der === undefined; attempt++) {
      if (attempt > SERIAL_ATTEMPTS) throw new MeshwardError('internal', `${SERIAL_ATTEMPTS} random serials in a row were already taken in ${this.store.description}: the random source or the store is broken; nothing was issued`);
      const serial = randomSerial();
      serialHex = serialHexOf(serial);
      // With other issuances in flight, signed on the thread pool (the main thread serves them meanwhile).
      const template = leafTemplate({ serial, publicKey: o.publicKey, keyType: o.keyType, spiffeId: o.spiffeId, dns: o.dns, ips: o.ips, subject: o.subject, validity });
      const signed = this.pooled ? await chain.signer.signAsync(template) : chain.signer.sign(template);
      const row = { serialHex, spiffeId: o.spiffeId, issuerSerialHex: chain.intermediate.row.serialHex, notBefore: validity.notBefore, notAfter: validity.notAfter, der: signed };
      // Outside a caller's transaction, concurrent issuances share commits (./store/batches.ts).
      const inserted = tx ? (await tx.insertCertificates([row]))[0]! : await this.recorder.insert(row);
      if (inserted) der = signed;
    }
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

  /** Marks a certificate revoked and, in the same transaction, writes a new current CRL; then rewrites D/crl.pem. */
  async revoke(serialText: string, reason: string, now: Date): Promise<Revocation> {
    await this.refresh();
    const serialHex = normalizeSerialHex(serialText);
    if (serialHex === undefined) throw invalid(`"${serialText.slice(0, 60)}" is not a serial number: give it in hex as meshward ca list prints it`);
    if (!(REVOCATION_REASONS as readonly string[]).includes(reason)) {
      throw invalid(`"${reason}" is not a revocation reason: use one of ${REVOCATION_REASONS.join(', ')}`);
    }
    const row = await this.store.certificate(serialHex);
    if (!row) {
      if (this.issuers.bySerial(serialHex)) throw invalid(`${serialHex} is one of this CA's own certificates: replace it with meshward ca rotate instead of revoking it`);
      throw new MeshwardError('not_found', `no certificate with serial ${serialHex} was issued by this CA: meshward ca list --dir ${this.dir} shows them`);
    }
    if (row.status === 'revoked') {
      throw new MeshwardError('failed_precondition', `certificate ${serialHex} (${row.spiffeId}) is already revoked since ${formatTime(row.revokedAt!)} (${row.reason})`);
    }
    await this.promoteDue(now);
    const written = await this.store.writeCrl((tx) => this.buildCrl(tx, now), {
      wait: true,
      before: async (tx) => {
        // Someone else revoked it since the check above: say so, and the transaction writes nothing.
        if (!await tx.revoke(serialHex, now, reason)) throw new MeshwardError('failed_precondition', `certificate ${serialHex} (${row.spiffeId}) was revoked meanwhile by another process`);
      },
    });
    writeFilesAtomic([{ path: this.layout.crl, data: written.crl!.pem }]);
    return { serialHex, spiffeId: row.spiffeId, revokedAt: now, reason: reason as RevocationReason };
  }

  /**
   * Fresh CRLs, one per CA certificate still trusted (roots included: OpenSSL needs one for each), made
   * the store's current CRL and written to D/crl.pem (the CLI's `ca crl`). Waits for another writer.
   */
  async crlPem(now: Date): Promise<string> {
    const written = await this.publishCrl(now, { wait: true });
    writeFilesAtomic([{ path: this.layout.crl, data: written.crl!.pem }]);
    return written.crl!.pem;
  }

  /**
   * Builds fresh CRLs and makes them the store's current CRL, one writer at a time across processes
   * (replicas): with `wait` false a caller that does not get the writer lock writes nothing and gets
   * the current CRL back (`written` false). Writes no file: a replica's CA directory may be read-only.
   */
  async publishCrl(now: Date, opts: { wait: boolean }): Promise<CrlWrite> {
    await this.refresh();
    await this.promoteDue(now);
    return this.store.writeCrl((tx) => this.buildCrl(tx, now), opts);
  }

  /**
   * Writes a fresh CRL when `need` (given the current CRL and the revocation generation) names a reason,
   * deciding under the writer lock: replicas that found the CRL due at the same moment write it once, the
   * others read the one written. Never waits for the lock (another writer is writing what is needed).
   */
  async renewCrl(now: Date, need: (crl: StoredCrl | undefined, revocations: bigint) => string | undefined): Promise<CrlWrite & { reason?: string }> {
    await this.refresh();
    await this.promoteDue(now);
    let reason: string | undefined;
    try {
      const w = await this.store.writeCrl((tx) => this.buildCrl(tx, now), {
        wait: false,
        before: async (tx) => {
          reason = need(await tx.currentCrl(), await tx.counter('revocations'));
          if (reason === undefined) throw new CrlAlreadyCurrent();
        },
      });
      return { ...w, ...(reason !== undefined && w.written ? { reason } : {}) };
    } catch (err) {
      if (err instanceof CrlAlreadyCurrent) return { written: false, crl: await this.store.currentCrl() };
      throw err;
    }
  }

  /** Runs inside the CRL writer's transaction (CRL numbers are taken from the counters table there). */
  private async buildCrl(tx: StoreOps, now: Date): Promise<CrlDraft> {
    // Backdated for clock skew, but never by more than a tenth of a short validity (tests, tuned setups).
    const thisUpdate = new Date(ms(now) - Math.min(BACKDATE_MS, this.config.crlValidityMs / 10));
    const nextUpdate = new Date(ms(now) + this.config.crlValidityMs);
    let pem = '';
    let crlNumber = 0n;
    for (const issuer of this.issuers.trusted()) {
      const revoked = issuer.row.role === 'intermediate'
        ? (await tx.revokedBy(issuer.row.serialHex)).map((r) => ({ serialHex: r.serialHex, revokedAt: r.revokedAt, reason: r.reason as RevocationReason }))
        : [];
      crlNumber = await tx.nextCounter('crl_number');
      pem += encodePem('X509 CRL', buildCrl({ issuer: issuer.cert, issuerKey: this.issuers.key(issuer), crlNumber, thisUpdate, nextUpdate, revoked }));
    }
    return { pem, crlNumber, thisUpdate, nextUpdate };
  }

  // Reading

  /** Every root still trusted: the content of bundle.crt. */
  async trustBundlePem(): Promise<string> {
    await this.refresh();
    return this.issuers.bundlePem();
  }

  /** An issued certificate by its serial (lowercase hex, as stored); concurrent lookups share one read. */
  issuedCertificate(serialHex: string): Promise<CertificateRow | undefined> {
    return this.lookup.certificate(serialHex);
  }

  async certificateStatus(serialText: string, now: Date): Promise<CertificateStatus> {
    const serialHex = normalizeSerialHex(serialText);
    const row = serialHex === undefined ? undefined : await this.store.certificateState(serialHex);
    if (!row) return { status: 'unknown' };
    if (row.status === 'revoked') return { status: 'revoked', spiffeId: row.spiffeId, notAfter: row.notAfter, revokedAt: row.revokedAt!, reason: row.reason ?? 'unspecified' };
    return { status: ms(row.notAfter) <= ms(now) ? 'expired' : 'valid', spiffeId: row.spiffeId, notAfter: row.notAfter };
  }

  /** Issued certificates, oldest first. */
  async list(now: Date = new Date()): Promise<CertificateListing[]> {
    await this.refresh();
    return (await this.store.certificates()).map((r) => ({
      serialHex: r.serialHex, spiffeId: r.spiffeId, issuerSerialHex: r.issuerSerialHex, notBefore: r.notBefore, notAfter: r.notAfter,
      status: r.status === 'revoked' ? 'revoked' : ms(r.notAfter) <= ms(now) ? 'expired' : 'valid',
      ...(r.revokedAt ? { revokedAt: r.revokedAt, reason: r.reason ?? 'unspecified' } : {}),
    }));
  }

  /** The CA's own certificates, oldest first. */
  async authorities(now: Date = new Date()): Promise<AuthorityListing[]> {
    await this.refresh();
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
  async rotate(opts: { root?: boolean; activateInMs?: number }, now: Date): Promise<RotationResult> {
    await this.refresh();
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
    await this.store.transaction(async (tx) => {
      for (const row of chain.rows) await tx.insertCaCertificate(row);
      await tx.nextCounter('ca_generation');
    });
    await this.refresh();
    const files: FileToWrite[] = [{ path: this.layout.bundle, data: this.issuers.bundlePem() }];
    if (activateInMs === 0) files.push(...this.currentChainFilesFor(now));
    writeFilesAtomic(files);
    await this.crlPem(now);
    const newRoot = chain.rows.find((r) => r.role === 'root');
    const intermediate = chain.rows.find((r) => r.role === 'intermediate')!;
    return {
      ...(newRoot ? { root: { serialHex: newRoot.serialHex, notAfter: newRoot.notAfter } } : {}),
      intermediate: { serialHex: intermediate.serialHex, notAfter: intermediate.notAfter },
      activatesAt,
    };
  }

  /** Retires the chains a rotation replaced, once their last leaf has expired; earlier it refuses and says when. */
  async finishRotation(now: Date): Promise<FinishResult> {
    await this.refresh();
    const pending = this.issuers.pending(now);
    if (pending.length > 0) {
      const from = pending[0]!.row.activatesAt;
      throw new MeshwardError('failed_precondition', `the new chain signs only from ${formatTime(from)}: the old chain must stay trusted until its last certificate expires, no earlier than ${formatTime(new Date(ms(from) + this.config.maxTtlMs))}; run meshward ca rotate --dir ${this.dir} --finish then`);
    }
    const { root, intermediate } = this.issuers.current(now);
    const oldIntermediates = this.issuers.trusted('intermediate').filter((i) => i !== intermediate);
    const oldRoots = this.issuers.trusted('root').filter((r) => r !== root
      && this.issuers.trusted('intermediate').every((i) => i.row.issuerSerialHex !== r.row.serialHex || oldIntermediates.includes(i)));
    if (oldIntermediates.length === 0 && oldRoots.length === 0) {
      throw new MeshwardError('failed_precondition', `nothing to finish in ${this.dir}: only the current chain (root ${root.row.serialHex}, intermediate ${intermediate.row.serialHex}) is trusted`);
    }
    let live = 0;
    let last = 0;
    for (const i of oldIntermediates) {
      const l = await this.store.liveCertificates(i.row.serialHex, now);
      live += l.count;
      if (l.lastNotAfter) last = Math.max(last, ms(l.lastNotAfter));
    }
    if (live > 0) {
      throw new MeshwardError('failed_precondition', `${live} certificate${live === 1 ? '' : 's'} issued by the previous chain ${live === 1 ? 'is' : 'are'} valid until ${formatTime(new Date(last))}: the old chain must stay trusted until then; run meshward ca rotate --dir ${this.dir} --finish after ${formatTime(new Date(last))} (in ${formatDuration(last - ms(now))})`);
    }
    const retiring = [...oldIntermediates, ...oldRoots];
    await this.store.transaction(async (tx) => {
      for (const i of retiring) await tx.setCaStatus(i.row.serialHex, 'retired', now);
      await tx.nextCounter('ca_generation');
    });
    await this.refresh();
    writeFilesAtomic([{ path: this.layout.bundle, data: this.issuers.bundlePem() }]);
    await this.crlPem(now);
    // A retired CA signs nothing again, not even a CRL: its key has no further use.
    for (const i of retiring) rmSync(this.layout.issuerKey(i.row.role, i.row.serialHex), { force: true });
    return { retired: retiring.map((i) => ({ role: i.row.role, serialHex: i.row.serialHex })) };
  }

  // Bootstrap tokens

  /** A one-time token for an identity this CA would sign (refused now rather than when the workload bootstraps). */
  async createToken(spiffeId: string, ttlMs: number, now: Date): Promise<CreatedToken> {
    this.rules.spiffeId(spiffeId);
    return createBootstrapToken(this.store, spiffeId, ttlMs, now);
  }

  // Helpers

  /**
   * Marks pending certificates whose time has come active in the store and, unless the directory is
   * read-only to this process, points the root and intermediate files at the chain that signs now. Which
   * chain signs never depends on those files (IssuerSet.current picks it by activation time), so a replica
   * on a read-only D activates the same chain as one on a writable D; the files are only a copy for users.
   */
  private async promoteDue(now: Date, within?: StoreOps): Promise<void> {
    const due = this.issuers.trusted().filter((i) => i.row.status === 'pending' && ms(i.row.activatesAt) <= ms(now));
    // On a writable D also catch up when another process (a `ca serve` replica) activated the chain.
    if (!this.readOnlyDir && (due.length > 0 || this.chainFilesStale(now))) writeFilesAtomic(this.currentChainFilesFor(now));
    if (due.length === 0) return;
    const activate = async (tx: StoreOps) => {
      for (const i of due) await tx.setCaStatus(i.row.serialHex, 'active');
    };
    await (within ? activate(within) : this.store.transaction(activate));
    for (const i of due) i.row.status = 'active';
  }

  /**
   * intermediate.crt is not the intermediate that signs now (a replica activated it), and D is writable:
   * the catch-up is a courtesy, so a CLI command run against a read-only D does not fail because of it.
   */
  private chainFilesStale(now: Date): boolean {
    let current: string;
    try {
      current = this.issuers.current(now).intermediate.pem;
      // Compared once per signing intermediate, not on every issuance: once this process has seen the file
      // hold it (or written it), only a change of the signing chain makes it stale again.
      if (current === this.chainFileChecked) return false;
      accessSync(this.layout.dir, constants.W_OK);
    } catch {
      return false; // no chain signs yet (the caller reports that), or D is read-only
    }
    try {
      if (readFileSync(this.layout.intermediateCert, 'utf8') !== current) return true;
      this.chainFileChecked = current;
      return false;
    } catch {
      return true;
    }
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
