// The CA's own certificates: every root and intermediate it made, which of them are still trusted, which
// chain signs at a given moment, their keys (read from `D/issuers/` only when needed) and the trust bundle.
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { MeshwardError } from '../errors.js';
import { formatTime } from '../duration.js';
import { CertificateSigner, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { importPrivateKeyPem, publicKeyMatches } from '../pki/keys.js';
import { encodePem } from '../pki/pem.js';
import type { CaLayout } from './layout.js';
import type { CaCertificateRow, CaRole } from './store/store.js';

export interface Issuer {
  row: CaCertificateRow;
  cert: ParsedCertificate;
  pem: string;
}

export interface SigningChain {
  root: Issuer;
  intermediate: Issuer;
  signer: CertificateSigner;
}

export class IssuerSet {
  readonly all: Issuer[];
  private readonly keys = new Map<string, KeyObject>();
  private signer?: { serialHex: string; signer: CertificateSigner };
  private bundle?: string;

  /** `where` names the store in messages (a file path, or a DSN without its password). */
  constructor(private readonly layout: CaLayout, rows: CaCertificateRow[], private readonly where: string = layout.database) {
    this.all = rows.map((row) => {
      let cert: ParsedCertificate;
      try {
        cert = parseCertificate(row.der);
      } catch (err) {
        throw new MeshwardError('failed_precondition', `${where}: the stored ${row.role} CA certificate ${row.serialHex} is unreadable (${(err as Error).message}): restore the database from a backup`);
      }
      return { row, cert, pem: encodePem('CERTIFICATE', row.der) };
    });
  }

  bySerial(serialHex: string): Issuer | undefined {
    return this.all.find((i) => i.row.serialHex === serialHex);
  }

  /** Not retired: in the bundle (roots) or chaining leaves that may still be in use (intermediates). */
  trusted(role?: CaRole): Issuer[] {
    return this.all.filter((i) => i.row.status !== 'retired' && (role === undefined || i.row.role === role));
  }

  /** A trusted CA certificate that signs only from a later moment (the new chain of a root rotation). */
  pending(now: Date): Issuer[] {
    return this.trusted().filter((i) => i.row.activatesAt.getTime() > now.getTime());
  }

  /** The newest intermediate that has activated by `now`, with its root: the chain that signs now. */
  current(now: Date): { root: Issuer; intermediate: Issuer } {
    let best: Issuer | undefined;
    for (const i of this.trusted('intermediate')) {
      if (i.row.activatesAt.getTime() > now.getTime()) continue;
      if (!best || i.row.activatesAt.getTime() >= best.row.activatesAt.getTime()) best = i;
    }
    if (!best) {
      const later = this.trusted('intermediate').map((i) => i.row.activatesAt.getTime());
      if (later.length > 0) {
        throw new MeshwardError('failed_precondition', `no intermediate CA of ${this.layout.dir} signs yet at ${formatTime(now)}: the first one signs from ${formatTime(new Date(Math.min(...later)))} (check the clock)`);
      }
      throw new MeshwardError('failed_precondition', `${this.layout.dir} has no trusted intermediate CA: run meshward ca rotate --dir ${this.layout.dir}`);
    }
    const root = best.row.issuerSerialHex ? this.bySerial(best.row.issuerSerialHex) : undefined;
    if (!root) throw new MeshwardError('failed_precondition', `${this.where}: the root of intermediate ${best.row.serialHex} is missing: restore the database from a backup`);
    return { root, intermediate: best };
  }

  /** The signing chain, refusing when its intermediate has expired (a leaf must never outlive its issuer). */
  signingChain(now: Date): SigningChain {
    const { root, intermediate } = this.current(now);
    if (intermediate.cert.notAfter.getTime() <= now.getTime()) {
      throw new MeshwardError('failed_precondition', `the intermediate CA ${intermediate.row.serialHex} expired at ${formatTime(intermediate.cert.notAfter)}: run meshward ca rotate --dir ${this.layout.dir}${root.cert.notAfter.getTime() <= now.getTime() ? ' --root' : ''}`);
    }
    if (this.signer?.serialHex !== intermediate.row.serialHex) {
      this.signer = { serialHex: intermediate.row.serialHex, signer: new CertificateSigner(intermediate.cert, this.key(intermediate)) };
    }
    return { root, intermediate, signer: this.signer.signer };
  }

  /** The private key of a CA certificate, read once from `D/issuers/` and checked against the certificate. */
  key(issuer: Issuer): KeyObject {
    const cached = this.keys.get(issuer.row.serialHex);
    if (cached) return cached;
    const path = this.layout.issuerKey(issuer.row.role, issuer.row.serialHex);
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new MeshwardError('failed_precondition', `the key of the ${issuer.row.role} CA ${issuer.row.serialHex} is missing (${path}): restore it from a backup`);
      throw new MeshwardError('permission_denied', `cannot read ${path}: ${code ?? 'error'}`);
    }
    let key: KeyObject;
    try {
      key = importPrivateKeyPem(pem);
    } catch {
      throw new MeshwardError('failed_precondition', `${path} does not hold a readable private key: restore it from a backup`);
    }
    if (!publicKeyMatches(key, issuer.cert.publicKey)) {
      throw new MeshwardError('failed_precondition', `${path} is not the key of the ${issuer.row.role} CA ${issuer.row.serialHex}: restore it from a backup`);
    }
    this.keys.set(issuer.row.serialHex, key);
    return key;
  }

  /** Every root still trusted (old and new during a rotation), oldest first: the content of bundle.crt. */
  bundlePem(): string {
    this.bundle ??= this.trusted('root').map((r) => r.pem).join('');
    return this.bundle;
  }
}
