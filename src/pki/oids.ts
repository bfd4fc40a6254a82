// The object identifiers meshward reads and writes, by name.

export const OID = {
  // Name attributes
  commonName: '2.5.4.3',
  surname: '2.5.4.4',
  serialNumber: '2.5.4.5',
  countryName: '2.5.4.6',
  localityName: '2.5.4.7',
  stateOrProvinceName: '2.5.4.8',
  streetAddress: '2.5.4.9',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  title: '2.5.4.12',
  givenName: '2.5.4.42',
  domainComponent: '0.9.2342.19200300.100.1.25',
  userId: '0.9.2342.19200300.100.1.1',
  emailAddress: '1.2.840.113549.1.9.1',

  // Extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  cRLReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',

  // Extended key usages
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',

  // PKCS#9 (CSR attributes)
  extensionRequest: '1.2.840.113549.1.9.14',

  // Public keys and signatures
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

/** Digest used with each signature algorithm we verify (null: the algorithm hashes internally, Ed25519). */
export const SIGNATURE_DIGEST: Readonly<Record<string, string | null>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
  [OID.ed25519]: null,
};

/** Readable names for signature algorithms (inspect output). */
export const SIGNATURE_NAMES: Readonly<Record<string, string>> = {
  [OID.ecdsaWithSha256]: 'ecdsa-with-SHA256',
  [OID.ecdsaWithSha384]: 'ecdsa-with-SHA384',
  [OID.ecdsaWithSha512]: 'ecdsa-with-SHA512',
  [OID.sha256WithRsa]: 'sha256WithRSAEncryption',
  [OID.sha384WithRsa]: 'sha384WithRSAEncryption',
  [OID.sha512WithRsa]: 'sha512WithRSAEncryption',
  [OID.ed25519]: 'Ed25519',
};

/** Readable names for extensions (inspect output). */
export const EXTENSION_NAMES: Readonly<Record<string, string>> = {
  [OID.subjectKeyIdentifier]: 'subjectKeyIdentifier',
  [OID.keyUsage]: 'keyUsage',
  [OID.subjectAltName]: 'subjectAltName',
  [OID.basicConstraints]: 'basicConstraints',
  [OID.cRLNumber]: 'cRLNumber',
  [OID.cRLReason]: 'cRLReason',
  [OID.nameConstraints]: 'nameConstraints',
  [OID.authorityKeyIdentifier]: 'authorityKeyIdentifier',
  [OID.extKeyUsage]: 'extKeyUsage',
};
