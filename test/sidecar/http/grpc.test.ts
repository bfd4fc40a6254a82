// A @grpc/grpc-js client through the frontend (mTLS, HTTP/2) to a grpc-js server on h2c: an allowed
// method works and its trailers (status, trailing metadata) come back; a denied one gets
// PERMISSION_DENIED with the reason; spoofed identity metadata is replaced; with the app down the
// client gets UNAVAILABLE.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BILLING_ID, startHarness, type Harness } from './harness.js';
import { freePort } from '../../support/ports.js';

const identity = (b: Buffer): Buffer => b;
const ORDERS = {
  Get: { path: '/shop.v1.Orders/Get', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  Cancel: { path: '/shop.v1.Orders/Cancel', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  List: { path: '/shop.v1.Orders/List', requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} satisfies grpc.ServiceDefinition;
const OrdersClient = grpc.makeGenericClientConstructor(ORDERS, 'Orders');

type Unary = (req: Buffer, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => grpc.ClientUnaryCall;

function call(client: grpc.Client, method: 'Get' | 'Cancel', req: Buffer, md = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; res?: Buffer; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    let done: { err: grpc.ServiceError | null; res?: Buffer } | undefined;
    let status = false;
    const finish = (): void => {
      if (done !== undefined && status) resolve({ ...done, trailers });
    };
    const c = ((client as unknown as Record<string, Unary>)[method]!).call(client, req, md, (err, res) => {
      done = { err, res };
      finish();
    });
    c.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
      status = true;
      finish();
    });
  });
}

function clientFor(h: Harness, name: string): grpc.Client {
  const c = h.clients[name]!.tls;
  return new OrdersClient(`127.0.0.1:${h.port}`, grpc.credentials.createSsl(Buffer.from(c.ca), Buffer.from(c.key), Buffer.from(c.cert)), {
    'grpc.ssl_target_name_override': 'localhost',
  });
}

describe('gRPC through the frontend to an h2c app', () => {
  let server: grpc.Server;
  let h: Harness;
  let seen: grpc.Metadata | undefined;
  let client: grpc.Client;
  before(async () => {
    server = new grpc.Server();
    server.addService(ORDERS, {
      Get: (c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        seen = c.metadata;
        const trailer = new grpc.Metadata();
        trailer.set('x-order-trailer', 'kept');
        cb(null, Buffer.concat([Buffer.from('order:'), c.request]), trailer);
      },
      Cancel: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from('cancelled')),
      List: (c: grpc.ServerWritableStream<Buffer, Buffer>) => {
        for (let i = 0; i < 3; i++) c.write(Buffer.from(`item${i}`));
        c.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    h = await startHarness({ app: `h2c://127.0.0.1:${port}` });
    client = clientFor(h, 'billing');
  });
  after(async () => {
    client?.close();
    await h?.close();
    await new Promise<void>((r) => (server ? server.tryShutdown(() => r()) : r()));
  });

  it('an allowed method works, with trailers kept and identity metadata set', async () => {
    const md = new grpc.Metadata();
    md.set('x-mesh-client-id', 'spiffe://example.org/ns/shop/sa/frontend');
    md.set('x-forwarded-client-cert', 'By=evil');
    const r = await call(client, 'Get', Buffer.from('42'), md);
    assert.equal(r.err, null);
    assert.equal(r.res!.toString(), 'order:42');
    assert.deepEqual(r.trailers!.get('x-order-trailer'), ['kept']);
    assert.deepEqual(seen!.get('x-mesh-client-id'), [BILLING_ID]);
    assert.deepEqual(seen!.get('x-mesh-scopes'), ['orders:read']);
    const xfcc = seen!.get('x-forwarded-client-cert');
    assert.equal(xfcc.length, 1);
    assert.ok(String(xfcc[0]).includes(`URI=${BILLING_ID}`));
  });

  it('a denied method gets PERMISSION_DENIED with the reason', async () => {
    const r = await call(client, 'Cancel', Buffer.from('42'));
    assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(r.err!.details, /orders:write/);
  });

  it('a method no route matches is denied too', async () => {
    const stream = (client as unknown as { List(req: Buffer): grpc.ClientReadableStream<Buffer> }).List(Buffer.from('x'));
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      stream.on('data', () => {});
      stream.on('error', resolve);
    });
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.ok(err.details.length > 0);
  });

  it('with the app down the client gets UNAVAILABLE', async () => {
    const down = await startHarness({ app: `h2c://127.0.0.1:${await freePort()}` });
    const c = clientFor(down, 'billing');
    try {
      const r = await call(c, 'Get', Buffer.from('1'));
      assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
      assert.match(r.err!.details, /unreachable/);
      assert.ok(down.logs.some((l) => l.event === 'upstream_error'));
    } finally {
      c.close();
      await down.close();
    }
  });
});
