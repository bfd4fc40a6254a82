// Three replicas (each an Authority with its own pool on one PostgreSQL database) race to publish the CRL
// while revocations happen: one writer at a time (pg_try_advisory_xact_lock), a replica that loses writes
// nothing and reads the current CRL, and every CRL written carries numbers higher than any before it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authority } from '../../src/ca/authority.js';
import { parseCrl } from '../../src/pki/crl.js';
import { decodePem } from '../../src/pki/pem.js';
import { TD } from '../ca-service/harness.js';
import { useCa } from '../support/ca-fixture.js';
import { usePostgres } from '../support/postgres.js';

describe('three replicas racing to write the CRL', () => {
  const pg = usePostgres();
  const ca = useCa({ postgres: pg });

  it('writes strictly increasing CRL numbers, never the same twice', async () => {
    const replicas = await Promise.all([0, 1, 2].map(() => Authority.open(ca.dir, { store: ca.dsn })));
    try {
      const serials: string[] = [];
      for (let i = 0; i < 6; i++) serials.push((await replicas[0]!.issue({ spiffeId: `spiffe://${TD}/ns/a/sa/w${i}` }, new Date())).serialHex);
      const written: { generation: bigint; numbers: bigint[] }[] = [];
      let notWritten = 0;
      await Promise.all(replicas.map(async (replica, r) => {
        for (let round = 0; round < 12; round++) {
          if (round % 4 === 0 && serials.length > 0) await replica.revoke(serials.pop()!, 'keyCompromise', new Date());
          const w = await replica.publishCrl(new Date(), { wait: r === 2 && round % 3 === 0 });
          if (!w.written) {
            notWritten++;
            continue;
          }
          written.push({ generation: w.crl!.generation, numbers: decodePem(w.crl!.pem).map((b) => parseCrl(b.der).crlNumber!) });
        }
      }));
      written.sort((a, b) => Number(a.generation - b.generation));
      const all = written.flatMap((w) => w.numbers);
      assert.equal(new Set(all.map(String)).size, all.length, 'no CRL number twice');
      for (let i = 1; i < all.length; i++) assert.ok(all[i]! > all[i - 1]!, `CRL numbers grow in write order (${all[i - 1]} then ${all[i]})`);
      // (revocations write CRLs of their own, not collected here: generations have gaps, never repeats)
      for (let i = 1; i < written.length; i++) assert.ok(written[i]!.generation > written[i - 1]!.generation, 'no CRL generation twice');
      const current = (await replicas[1]!.store.currentCrl())!;
      assert.equal(current.generation, written.at(-1)!.generation, 'every replica reads the last CRL written');
      assert.equal(current.revocations, (await replicas[1]!.store.crlGenerations()).revocations);
      const revoked = parseCrl(decodePem(current.pem)[1]!.der).revoked.length + parseCrl(decodePem(current.pem)[0]!.der).revoked.length;
      assert.equal(revoked, 6, 'the last CRL lists every revocation');
      process.stdout.write(`# ${written.length} CRLs written, ${notWritten} attempts found the lock taken\n`);
    } finally {
      for (const r of replicas) await r.close();
    }
  });
});
