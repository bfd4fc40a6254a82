// The names a workload may put in its own certificate over gRPC (config.yaml's allowedDnsNames and
// allowedIpAddresses): by default its service account's own Kubernetes service names and no IP address,
// for a bootstrap with a token and for a renewal over mTLS alike; a refusal is PERMISSION_DENIED naming
// the name and the patterns, and writes nothing. A CA with its own patterns ({{ns}} templates, *. and
// **. wildcards, CIDR ranges) follows them. The operator's CLI, which holds the CA's keys, is not bound.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parse, stringify } from 'yaml';
import { Authority } from '../../src/ca/authority.js';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { createBootstrapToken } from '../../src/ca/tokens.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { encodePem } from '../../src/pki/pem.js';
import { runCli } from '../support/cli.js';
import { useCa, type CaFixture } from '../support/ca-fixture.js';
import { TD, assertSignRefused, trySign } from './harness.js';

const ID = `spiffe://${TD}/ns/shop/sa/orders`;
/** Every case signs as the same identity: the per-identity Sign rate limit must not answer first. */
const GENEROUS = { signRateLimit: { ratePerSecond: 1000, burst: 1000 } };
const csrWith = (names: { dns?: string[]; ips?: string[] }, id = ID) => createCsr({ subject: {}, uris: [id], ...names }, generateKeyPair());

async function tokenFor(ca: CaFixture, id = ID): Promise<string> {
  const store = SqliteStore.open(join(ca.dir, 'ca.db'));
  try {
    return (await createBootstrapToken(store, id, 600_000, new Date())).token;
  } finally {
    await store.close();
  }
}

/** Signs with a fresh token; the leaf's names, or the refusal. */
async function signWithToken(ca: CaFixture, names: { dns?: string[]; ips?: string[] }, id = ID) {
  const r = await trySign(ca.client(), { csr: csrWith(names, id), token: await tokenFor(ca, id) });
  return r.ok ? { dns: parseCertificate(r.res.certChain[0]!).dns, ips: parseCertificate(r.res.certChain[0]!).ips } : r;
}

describe('the default SAN policy', () => {
  const ca = useCa({ inProcess: { options: GENEROUS } });

  it('allows the service account\'s own service names, in both spellings', async () => {
    const names = ['orders.shop.svc', 'orders.shop.svc.cluster.local'];
    assert.deepEqual(await signWithToken(ca, { dns: names }), { dns: names, ips: [] });
  });

  const refused: [string, { dns?: string[]; ips?: string[] }, RegExp][] = [
    ['another service\'s name', { dns: ['payments.shop.svc'] }, /DNS name payments\.shop\.svc is not allowed for spiffe:\/\/example\.org\/ns\/shop\/sa\/orders .*allowed for it: orders\.shop\.svc, orders\.shop\.svc\.cluster\.local/],
    ['its own name in another namespace', { dns: ['orders.prod.svc'] }, /DNS name orders\.prod\.svc is not allowed/],
    ['an outside host name', { dns: ['orders.shop.svc', 'www.example.com'] }, /DNS name www\.example\.com is not allowed/],
    ['a wildcard', { dns: ['*.shop.svc'] }, /DNS name \*\.shop\.svc is not allowed/],
    ['an IP address', { ips: ['10.1.2.3'] }, /IP address 10\.1\.2\.3 is not allowed .*no IP address is allowed/],
  ];
  for (const [what, names, reason] of refused) {
    it(`refuses ${what} with PERMISSION_DENIED, writing nothing and keeping the token`, async () => {
      const token = await tokenFor(ca);
      await assertSignRefused(ca.server, ca.dir, { csr: csrWith(names), token }, { code: grpc.status.PERMISSION_DENIED, reason });
      const retry = await trySign(ca.client(), { csr: csrWith({ dns: ['orders.shop.svc'] }), token });
      assert.ok(retry.ok, `the token still works for allowed names: ${JSON.stringify(retry)}`);
    });
  }

  it('a path without ns/sa pairs gets no DNS name at all', async () => {
    const r = await signWithToken(ca, { dns: ['batch.svc'] }, `spiffe://${TD}/batch`);
    assert.ok(!('dns' in r) && r.code === grpc.status.PERMISSION_DENIED && /no DNS name is allowed for it/.test(r.details), JSON.stringify(r));
  });

  it('binds a renewal over mTLS too: a certificate the operator issued with an outside name cannot carry it on', async () => {
    const a = await Authority.open(ca.dir);
    let current;
    try {
      current = await a.issue({ spiffeId: ID, dns: ['orders.legacy.example.com'], ttlMs: 600_000 }, new Date());
    } finally {
      await a.close();
    }
    const mtls = { keyPem: current.privateKeyPem, chainPem: current.chainPem };
    await assertSignRefused(ca.server, ca.dir, { csr: csrWith({ dns: ['orders.legacy.example.com'] }) }, { code: grpc.status.PERMISSION_DENIED, reason: /orders\.legacy\.example\.com is not allowed/ }, mtls);
    const renewed = await trySign(ca.client(mtls), { csr: csrWith({ dns: ['orders.shop.svc'] }) });
    assert.ok(renewed.ok, JSON.stringify(renewed));
  });

  it('does not bind the operator: cert sign and cert issue accept any valid name', async () => {
    const csrFile = join(ca.root, 'operator.csr');
    writeFileSync(csrFile, encodePem('CERTIFICATE REQUEST', csrWith({ dns: ['www.example.com'], ips: ['192.0.2.7'] })));
    const signed = await runCli(['cert', 'sign', '--ca-dir', ca.dir, '--csr', csrFile, '--out', join(ca.root, 'operator.crt')]);
    assert.equal(signed.code, 0, signed.stderr);
    const issued = await runCli(['cert', 'issue', '--ca-dir', ca.dir, '--spiffe-id', ID, '--dns', 'www.example.com', '--ip', '192.0.2.8', '--out', join(ca.root, 'issued')]);
    assert.equal(issued.code, 0, issued.stderr);
  });
});

describe('a SAN policy of config.yaml', () => {
  const ca = useCa({
    inProcess: { options: GENEROUS },
    prepare: ({ dir }) => {
      // ca init spelled the defaults out: replace them.
      const config = parse(readFileSync(join(dir, 'config.yaml'), 'utf8')) as Record<string, unknown>;
      config.allowedDnsNames = ['{{sa}}.{{ns}}.internal.example.org', '*.{{ns}}.apps.example.org', '**.shared.example.org'];
      config.allowedIpAddresses = ['10.0.0.0/8', 'fd00::/8'];
      writeFileSync(join(dir, 'config.yaml'), stringify(config));
    },
  });

  it('allows what its templates, wildcards and ranges allow', async () => {
    const names = { dns: ['orders.shop.internal.example.org', 'api.shop.apps.example.org', 'a.b.shared.example.org'], ips: ['10.20.30.40', 'fd00::7'] };
    assert.deepEqual(await signWithToken(ca, names), names);
  });

  const refused: [string, { dns?: string[]; ips?: string[] }, RegExp][] = [
    ['the default service name, no longer listed', { dns: ['orders.shop.svc'] }, /orders\.shop\.svc is not allowed/],
    ['two labels where *. allows one', { dns: ['a.b.shop.apps.example.org'] }, /a\.b\.shop\.apps\.example\.org is not allowed/],
    ['the bare suffix of a **. pattern', { dns: ['shared.example.org'] }, /shared\.example\.org is not allowed/],
    ['another namespace\'s apps', { dns: ['api.prod.apps.example.org'] }, /api\.prod\.apps\.example\.org is not allowed/],
    ['an address outside the ranges', { ips: ['192.168.1.1'] }, /192\.168\.1\.1 is not allowed .*10\.0\.0\.0\/8, fd00::\/8/],
    ['an IPv6 address outside the ranges', { ips: ['2001:db8::1'] }, /2001:db8::1 is not allowed/],
  ];
  for (const [what, names, reason] of refused) {
    it(`refuses ${what}`, async () => {
      await assertSignRefused(ca.server, ca.dir, { csr: csrWith(names), token: await tokenFor(ca) }, { code: grpc.status.PERMISSION_DENIED, reason });
    });
  }
});
