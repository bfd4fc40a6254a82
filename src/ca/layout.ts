// The file names of a CA directory (docs/ca-operations.md) and of a workload directory, in one place so the CLI,
// the Authority and the CA service agree on them.
import { join } from 'node:path';

/** Files of a CA directory D. `root.*` and `intermediate.*` are the chain that signs now. */
export class CaLayout {
  constructor(readonly dir: string) {}
  get config(): string { return join(this.dir, 'config.yaml'); }
  get database(): string { return join(this.dir, 'ca.db'); }
  get rootCert(): string { return join(this.dir, 'root.crt'); }
  get rootKey(): string { return join(this.dir, 'root.key'); }
  get intermediateCert(): string { return join(this.dir, 'intermediate.crt'); }
  get intermediateKey(): string { return join(this.dir, 'intermediate.key'); }
  /** Every root still trusted (old and new during a rotation). */
  get bundle(): string { return join(this.dir, 'bundle.crt'); }
  /** One CRL per CA certificate still trusted. */
  get crl(): string { return join(this.dir, 'crl.pem'); }
  /**
   * Every CA certificate this CA ever made, with the key of each one still trusted, named by role and
   * serial (`issuers/intermediate-<serial>.crt`): previous chains keep signing CRLs until they are
   * retired, and a pending chain waits here until it activates.
   */
  get issuersDir(): string { return join(this.dir, 'issuers'); }
  issuerCert(role: string, serialHex: string): string { return join(this.issuersDir, `${role}-${serialHex}.crt`); }
  issuerKey(role: string, serialHex: string): string { return join(this.issuersDir, `${role}-${serialHex}.key`); }
  /** SQLite's companions of ca.db in WAL mode (removed together with it by `ca init --force`). */
  get databaseCompanions(): string[] { return [`${this.database}-wal`, `${this.database}-shm`]; }
}

/** Files of a workload directory O (the names Kubernetes TLS secrets and cert-manager use). */
export class WorkloadLayout {
  constructor(readonly dir: string) {}
  /** Leaf first, then the intermediate. */
  get certificate(): string { return join(this.dir, 'tls.crt'); }
  /** PKCS#8 PEM, mode 0600. */
  get privateKey(): string { return join(this.dir, 'tls.key'); }
  /** The trust bundle. */
  get trustBundle(): string { return join(this.dir, 'ca.crt'); }
}
