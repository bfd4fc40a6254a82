// The CA's gRPC API (proto/meshward/ca/v1/ca.proto) loaded at run time with @grpc/proto-loader, and the
// TypeScript shapes of its messages. Server (ca/server) and client (agent/) both load it from here.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { MeshwardError } from '../../errors.js';

const PROTO_FILE = join('proto', 'meshward', 'ca', 'v1', 'ca.proto');

/**
 * Finds the proto by walking up from this module: it sits at the package root, and this file runs as
 * src/ca/server/proto.ts, dist/src/ca/server/proto.js or node_modules/meshward/dist/src/..., so the first
 * ancestor holding proto/ is the package root in every case.
 */
export function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PROTO_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new MeshwardError('internal', `${PROTO_FILE} was not found above ${fileURLToPath(import.meta.url)}: the package is incomplete (reinstall meshward)`);
    }
    dir = parent;
  }
}

export interface SignRequest { csr: Buffer; token: string; ttlSeconds: number }
export interface SignResponse { certChain: Buffer[]; trustBundle: Buffer[]; notAfter: number; spiffeId: string; serial: string }
export interface TrustBundleMessage {
  roots: Buffer[]; pem: string; sha256: string;
  /** The current CRLs (additive fields: empty from an older CA). */
  crls?: Buffer[]; crlPem?: string; crlNumber?: number;
}
export interface CrlMessage { crls: Buffer[]; pem: string; crlNumber: number; thisUpdate: number; nextUpdate: number }
export type Empty = Record<string, never>;

/** The client stub type proto-loader generates for CertificateAuthority (only what the agent calls). */
export interface CertificateAuthorityClient extends grpc.Client {
  Sign(req: Partial<SignRequest>, metadata: grpc.Metadata, options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: SignResponse) => void): grpc.ClientUnaryCall;
  GetTrustBundle(req: Empty, metadata: grpc.Metadata, options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: TrustBundleMessage) => void): grpc.ClientUnaryCall;
  WatchTrustBundle(req: Empty, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<TrustBundleMessage>;
  GetCrl(req: Empty, metadata: grpc.Metadata, options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: CrlMessage) => void): grpc.ClientUnaryCall;
}

interface LoadedApi {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => CertificateAuthorityClient;
}

let loaded: LoadedApi | undefined;

/** Loads the proto once per process. Longs become numbers (seconds fit), bytes stay Buffers. */
export function certificateAuthorityApi(): LoadedApi {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(protoPath(), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    meshward: { ca: { v1: { CertificateAuthority: grpc.ServiceClientConstructor } } };
  };
  const ctor = pkg.meshward.ca.v1.CertificateAuthority;
  loaded = { service: ctor.service, Client: ctor as unknown as LoadedApi['Client'] };
  return loaded;
}

/** The SPIFFE ID of `meshward ca serve`'s own serving certificate; agents check it (not only the host name). */
export function caServerSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/meshward/ca`;
}
