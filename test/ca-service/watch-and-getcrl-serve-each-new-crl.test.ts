// On SQLite (one ca serve; the CLI beside it): GetCrl and WatchTrustBundle serve the store's current CRL.
// A `meshward cert revoke` run by the CLI shows up on an open WatchTrustBundle stream (crls, crl_pem,
// crl_number all agreeing, the number higher than before) and in GetCrl, within the check interval.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authority } from '../../src/ca/authority.js';
import type { TrustBundleMessage } from '../../src/ca/server/proto.js';
import { parseCrl } from '../../src/pki/crl.js';
import { decodePem } from '../../src/pki/pem.js';
import { runCli } from '../support/cli.js';
import { useCa } from '../support/ca-fixture.js';
import { TD, clientFor } from './harness.js';
import { waitFor } from '../support/poll.js';

const revokedIn = (pem: string): string[] => decodePem(pem).flatMap((b) => parseCrl(b.der).revoked.map((r) => r.serialHex));

describe('GetCrl and WatchTrustBundle serve each new CRL', () => {
  const ca = useCa({ inProcess: { options: { crlCheckMs: 200 } } });

  it('pushes the CRL that lists a certificate revoked by the CLI', async () => {
    const authority = await Authority.open(ca.dir);
    const issued = await authority.issue({ spiffeId: `spiffe://${TD}/ns/shop/sa/frontend` }, new Date());
    await authority.close();
    const client = clientFor(ca.server, ca.dir);
    const stream = client.watchTrustBundle();
    const messages: TrustBundleMessage[] = [];
    stream.on('data', (m: TrustBundleMessage) => messages.push(m));
    stream.on('error', () => undefined);
    try {
      const first = await waitFor('the first bundle', () => messages[0], { timeoutMs: 30_000 });
      assert.ok(first.crlPem && first.crls!.length >= 2, 'the bundle carries the CRLs (one per CA certificate)');
      assert.deepEqual(first.crls, decodePem(first.crlPem).map((b) => b.der), 'crls and crl_pem hold the same CRLs');
      assert.equal((await client.getCrl(10_000)).crlNumber, first.crlNumber, 'GetCrl serves the same CRL');

      const r = await runCli(['cert', 'revoke', '--ca-dir', ca.dir, '--serial', issued.serialHex]);
      assert.equal(r.code, 0, r.stderr);
      const pushed = await waitFor('a pushed CRL listing the revoked serial', () => messages.find((m) => revokedIn(m.crlPem ?? '').includes(issued.serialHex)), { timeoutMs: 30_000 });
      assert.ok(pushed.crlNumber! > first.crlNumber!, `the CRL number grew (${first.crlNumber} then ${pushed.crlNumber})`);
      assert.equal(pushed.sha256, first.sha256, 'the roots did not change');
      const got = await client.getCrl(10_000);
      assert.ok(revokedIn(got.pem).includes(issued.serialHex), 'GetCrl lists it too');
      assert.ok(got.nextUpdate > got.thisUpdate);
    } finally {
      stream.cancel();
      client.close();
    }
  });
});
