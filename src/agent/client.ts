// A client of the CA's gRPC API for the agent: TLS to the CA (verified against the bundle the agent
// trusts, and the CA's SPIFFE ID when known), optionally presenting the workload's current certificate so
// Sign is authenticated by mTLS. One client per credential set: a renewed certificate means a new client.
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { certificateAuthorityApi } from '../ca/server/proto.js';
import type { CertificateAuthorityClient, CrlMessage, SignRequest, SignResponse, TrustBundleMessage } from '../ca/server/proto.js';

export interface CaClientOptions {
  /** host:port of `meshward ca serve`. */
  address: string;
  /** PEM roots that may sign the CA's serving certificate. */
  rootsPem: Buffer;
  /** For renew-by-mTLS: the workload's key and certificate chain (PEM). */
  clientKeyPem?: Buffer;
  clientChainPem?: Buffer;
  /** When set, the CA's certificate must carry this URI SAN (spiffe://TD/meshward/ca). */
  caSpiffeId?: string;
}

function hostOf(address: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(address) ?? /^([^:]+):\d+$/.exec(address);
  return m ? m[1]! : address;
}

function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export class CaClient {
  private readonly client: CertificateAuthorityClient;

  constructor(readonly options: CaClientOptions) {
    const { Client } = certificateAuthorityApi();
    const expected = options.caSpiffeId;
    const credentials = grpc.credentials.createSsl(options.rootsPem, options.clientKeyPem ?? null, options.clientChainPem ?? null, {
      // Runs after the usual hostname check: the peer must also be the CA of our trust domain.
      checkServerIdentity: (_host, cert) => (expected && !uriSans(cert).includes(expected)
        ? new Error(`the server at ${options.address} is not ${expected} (it presented ${uriSans(cert).join(', ') || 'no URI SAN'})`)
        : undefined),
    });
    const channelOptions: grpc.ChannelOptions = {
      // Fail fast when the CA is down: the agent has its own backoff.
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 2000,
      'grpc.keepalive_time_ms': 30_000,
    };
    // grpc-js sends the target host as TLS server name; for an IP literal Node warns (DEP0123: RFC 6066
    // forbids IPs in SNI). The check above ignores the host name and authenticates the CA by its SPIFFE
    // ID, so a fixed name is sent instead.
    if (expected && isIP(hostOf(options.address)) !== 0) channelOptions['grpc.ssl_target_name_override'] = 'meshward-ca';
    this.client = new Client(options.address, credentials, channelOptions);
  }

  sign(request: SignRequest, timeoutMs: number): Promise<SignResponse> {
    return new Promise((resolve, reject) => {
      this.client.Sign(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      });
    });
  }

  getTrustBundle(timeoutMs: number): Promise<TrustBundleMessage> {
    return new Promise((resolve, reject) => {
      this.client.GetTrustBundle({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      });
    });
  }

  getCrl(timeoutMs: number): Promise<CrlMessage> {
    return new Promise((resolve, reject) => {
      this.client.GetCrl({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      });
    });
  }

  watchTrustBundle(): grpc.ClientReadableStream<TrustBundleMessage> {
    return this.client.WatchTrustBundle({});
  }

  close(): void {
    this.client.close();
  }
}
