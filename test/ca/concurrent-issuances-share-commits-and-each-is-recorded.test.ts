// Group commit (src/ca/store/batches.ts), on both stores: 60 issuances started at once on one Authority
// are committed in shared batches, and every certificate returned is recorded with exactly its DER, with 60
// distinct serials. On PostgreSQL, issuances started while the database is stopped all fail with the
// store's UNAVAILABLE error and record nothing; once it is back, the next ones are recorded again.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { isMeshwardError } from '../../src/errors.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { usePostgres } from '../support/postgres.js';
import { TD, tempDir } from './fixtures.js';

const ID = `spiffe://${TD}/ns/load/sa/worker`;
const csr = () => createCsr({ subject: {}, uris: [ID] }, generateKeyPair('ec-p256'));
const temp = tempDir();
after(() => temp.cleanup());
const pg = usePostgres();

async function issueAtOnce(ca: Authority, count: number) {
  const csrs = Array.from({ length: count }, csr);
  return Promise.allSettled(csrs.map((c) => ca.signCsr(c, {}, new Date())));
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`concurrent issuances on ${backend}`, () => {
    it('records every certificate returned, each once, with its DER', async () => {
      const store = backend === 'postgres' ? await pg.cluster.createDatabase() : undefined;
      const ca = await Authority.init(join(temp.dir, backend), { trustDomain: TD, store }, new Date());
      try {
        const outcomes = await issueAtOnce(ca, 60);
        const issued = outcomes.map((o) => {
          assert.equal(o.status, 'fulfilled', o.status === 'rejected' ? String(o.reason) : '');
          return (o as PromiseFulfilledResult<Awaited<ReturnType<Authority['signCsr']>>>).value;
        });
        assert.equal(new Set(issued.map((c) => c.serialHex)).size, 60);
        for (const c of issued) assert.deepEqual((await ca.store.certificate(c.serialHex))?.der, c.chainDer[0], c.serialHex);
        assert.equal((await ca.store.contents()).certificates, 60);
      } finally {
        await ca.close();
      }
    });
  });
}

describe('concurrent issuances while PostgreSQL is down', () => {
  it('all fail with UNAVAILABLE, none is recorded, and issuing works again once it is back', async () => {
    const store = await pg.cluster.createDatabase();
    const ca = await Authority.init(join(temp.dir, 'outage'), { trustDomain: TD, store }, new Date());
    try {
      await pg.cluster.stop();
      const outcomes = await issueAtOnce(ca, 20);
      for (const o of outcomes) {
        assert.equal(o.status, 'rejected');
        const err = (o as PromiseRejectedResult).reason;
        assert.ok(isMeshwardError(err) && err.code === 'unavailable', String(err));
      }
      await pg.cluster.start();
      let recovered;
      for (let attempt = 0; attempt < 100 && !recovered; attempt++) {
        recovered = await ca.signCsr(csr(), {}, new Date()).catch(() => undefined);
        if (!recovered) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(recovered, 'issuing works again after the database is back');
      assert.equal((await ca.store.contents()).certificates, 1, 'only the certificate issued after the outage is recorded');
    } finally {
      await ca.close();
    }
  });
});
