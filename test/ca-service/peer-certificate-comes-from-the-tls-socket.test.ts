// `ca serve` reads the caller's client certificate from the TLS socket under the gRPC call
// (peerCertificateDerOf, src/ca/server/server.ts) instead of grpc-js's getAuthContext(), which converts the
// whole certificate to an object on every call. Over real TLS on 127.0.0.1 both give the same bytes, the
// certificate the client presented; without a client certificate both give nothing; and when the call
// does not have the grpc-js internals the function looks for, getAuthContext() answers instead.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../../src/ca/authority.js';
import { peerCertificateDerOf, tlsSocketOf } from '../../src/ca/server/server.js';
import { ServingCredentialsProvider } from '../../src/ca/server/serving-identity.js';
import { decodePem } from '../../src/pki/pem.js';
import { tempDir } from '../support/temp-dir.js';
import { TD } from './harness.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const ECHO = {
  Echo: { path: '/test.Peer/Echo', requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
};

describe('the client certificate as the CA server reads it', () => {
  const temp = tempDir();
  let server: grpc.Server;
  let port = 0;
  let bundlePem = '';
  let client: { keyPem: string; chainPem: string } = { keyPem: '', chainPem: '' };
  const seen: { socketFound: boolean; fromSocket?: Buffer; fromAuthContext?: Buffer }[] = [];

  before(async () => {
    const ca = await Authority.init(join(temp.dir, 'ca'), { trustDomain: TD }, new Date());
    try {
      bundlePem = await ca.trustBundlePem();
      const serving = await ca.issue({ spiffeId: `spiffe://${TD}/ns/test/sa/server`, ips: ['127.0.0.1'] }, new Date());
      const issued = await ca.issue({ spiffeId: `spiffe://${TD}/ns/test/sa/client` }, new Date());
      client = { keyPem: issued.privateKeyPem, chainPem: issued.chainPem };
      server = new grpc.Server();
      server.addService(ECHO, {
        Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          seen.push({ socketFound: tlsSocketOf(call) !== undefined, fromSocket: peerCertificateDerOf(call), fromAuthContext: call.getAuthContext().sslPeerCertificate?.raw });
          callback(null, Buffer.alloc(0));
        },
      });
      // The credentials `ca serve` uses: client certificates requested, verified against the bundle, optional.
      const provider = new ServingCredentialsProvider();
      provider.setTrustBundle(bundlePem);
      provider.setIdentity(serving.chainPem, serving.privateKeyPem);
      const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
      port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    } finally {
      await ca.close();
    }
  });
  after(async () => {
    server?.forceShutdown();
    temp.cleanup();
  });

  async function call(withCertificate: boolean): Promise<(typeof seen)[number]> {
    const credentials = withCertificate
      ? grpc.credentials.createSsl(Buffer.from(bundlePem), Buffer.from(client.keyPem), Buffer.from(client.chainPem))
      : grpc.credentials.createSsl(Buffer.from(bundlePem));
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Peer');
    const c = new Client(`127.0.0.1:${port}`, credentials);
    try {
      const before = seen.length;
      await new Promise<void>((resolve, reject) => {
        (c as unknown as { Echo(req: Buffer, cb: (err: Error | null) => void): void }).Echo(Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      });
      assert.equal(seen.length, before + 1);
      return seen[seen.length - 1]!;
    } finally {
      c.close();
    }
  }

  it('is the leaf the client presented, byte for byte, as getAuthContext() gives it', async () => {
    const leaf = decodePem(client.chainPem)[0]!.der;
    const r = await call(true);
    assert.ok(r.socketFound, 'the TLS socket is found under the call (this grpc-js keeps it where expected)');
    assert.ok(r.fromAuthContext, "getAuthContext() gives the certificate");
    assert.ok(r.fromSocket, "read from the TLS socket");
    assert.deepEqual(r.fromSocket, leaf);
    assert.deepEqual(r.fromSocket, r.fromAuthContext);
  });

  it('is absent when the client presents no certificate', async () => {
    const r = await call(false);
    assert.equal(r.fromSocket, undefined);
    assert.equal(r.fromAuthContext, undefined);
  });

  it('comes from getAuthContext() when the call lacks the grpc-js internals it looks for', () => {
    const der = decodePem(client.chainPem)[0]!.der;
    const bare = (auth: ReturnType<grpc.ServerUnaryCall<unknown, unknown>["getAuthContext"]>) => ({ getAuthContext: () => auth }) as unknown as grpc.ServerUnaryCall<unknown, unknown>;
    assert.deepEqual(peerCertificateDerOf(bare({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: der } as never })), der);
    assert.equal(peerCertificateDerOf(bare({})), undefined);
  });
});
