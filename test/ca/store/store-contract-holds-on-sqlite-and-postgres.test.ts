// One table of store behaviour, run against both backends (SQLite in a temp file, PostgreSQL started by the
// test): every method of the CaStore interface, refusals included, with two connections where another
// process's view matters (a token used once, a revocation seen by a listener elsewhere).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SCHEMA_VERSION } from '../../../src/ca/store/migrations.js';
import { PostgresStore } from '../../../src/ca/store/postgres.js';
import { SqliteStore } from '../../../src/ca/store/sqlite.js';
import type { CaStore, StoredCrl } from '../../../src/ca/store/store.js';
import { usePostgres } from '../../support/postgres.js';
import { T0, tempDir } from '../fixtures.js';

const MIN = 60_000;
const at = (minutes: number) => new Date(T0.getTime() + minutes * MIN);
const der = (n: number) => Buffer.from([0x30, 0x03, 0x02, 0x01, n]);
const ID = 'spiffe://example.org/ns/a/sa/b';

interface Backend { name: string; open(): Promise<{ a: CaStore; b: CaStore }> }

const temp = tempDir();
after(() => temp.cleanup());
const pg = usePostgres();
let n = 0;
const backends: Backend[] = [
  {
    name: 'sqlite',
    open: async () => {
      const path = join(temp.dir, `store-${n++}.db`);
      const a = SqliteStore.create(path);
      return { a, b: SqliteStore.open(path) };
    },
  },
  {
    name: 'postgres',
    open: async () => {
      const dsn = await pg.cluster.createDatabase();
      const a = await PostgresStore.open(dsn);
      return { a, b: await PostgresStore.open(dsn) };
    },
  },
];

type Case = [string, (a: CaStore, b: CaStore) => Promise<void>];

const crlDraft = (number: bigint) => async () => ({ pem: `-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n`, crlNumber: number, thisUpdate: at(0), nextUpdate: at(60) });

const cases: Case[] = [
  ['a new store is empty at the current schema version', async (a) => {
    assert.equal(await a.schemaVersion(), SCHEMA_VERSION);
    assert.deepEqual(a.migration, { from: 0, to: SCHEMA_VERSION });
    assert.deepEqual(await a.contents(), { caCertificates: 0, certificates: 0, revoked: 0, tokens: 0, crl: false });
    assert.deepEqual(await a.crlGenerations(), { revocations: 0n, crl: 0n });
    assert.equal(await a.currentCrl(), undefined);
    assert.deepEqual(await a.counters(), []);
    assert.deepEqual(await a.caCertificates(), []);
  }],
  ['CA certificates round-trip, oldest first, and change status', async (a, b) => {
    const row = { serialHex: 'aa01', role: 'root' as const, issuerSerialHex: null, der: der(1), notBefore: at(0), notAfter: at(100), status: 'active' as const, activatesAt: at(0), createdAt: at(0) };
    await a.insertCaCertificate(row);
    await a.insertCaCertificate({ ...row, serialHex: 'aa02', role: 'intermediate', issuerSerialHex: 'aa01', der: der(2), status: 'pending', activatesAt: at(5), createdAt: at(1) });
    const rows = await b.caCertificates();
    assert.deepEqual(rows.map((r) => [r.serialHex, r.role, r.issuerSerialHex, r.status, r.retiredAt]), [['aa01', 'root', null, 'active', null], ['aa02', 'intermediate', 'aa01', 'pending', null]]);
    assert.deepEqual(rows[0]!.der, der(1));
    assert.equal(rows[1]!.activatesAt.getTime(), at(5).getTime());
    await b.setCaStatus('aa01', 'retired', at(50));
    const retired = (await a.caCertificates())[0]!;
    assert.equal(retired.status, 'retired');
    assert.equal(retired.retiredAt!.getTime(), at(50).getTime());
    await assert.rejects(a.insertCaCertificate(row), 'a CA serial is unique');
  }],
  ['an issued certificate is recorded once: a taken serial is refused and the first row kept', async (a, b) => {
    assert.equal(await a.insertCertificate('01', ID, 'aa02', at(0), at(60), der(1)), true);
    assert.equal(await b.insertCertificate('01', 'spiffe://example.org/other', 'aa02', at(0), at(90), der(9)), false);
    const row = (await a.certificate('01'))!;
    assert.deepEqual([row.spiffeId, row.status, row.revokedAt, row.reason, row.notAfter.getTime()], [ID, 'valid', null, null, at(60).getTime()]);
    assert.deepEqual(row.der, der(1));
    assert.deepEqual(await b.certificateState('01'), { status: 'valid', notAfter: at(60), revokedAt: null, reason: null, spiffeId: ID });
    assert.equal(await a.certificate('02'), undefined);
    assert.equal(await a.certificateState('02'), undefined);
    await a.insertCertificate('00', ID, 'aa02', at(-5), at(60), der(2));
    assert.deepEqual((await b.certificates()).map((c) => c.serialHex), ['00', '01'], 'oldest first');
  }],
  ['several certificates in one statement (group commit): each recorded, a taken serial reported per row', async (a, b) => {
    const row = (serialHex: string, n: number, minutes = 0) => ({ serialHex, spiffeId: ID, issuerSerialHex: 'aa02', notBefore: at(minutes), notAfter: at(60), der: der(n) });
    assert.deepEqual(await a.insertCertificates([row('01', 1)]), [true]);
    // '01' is taken already, '03' appears twice: only its first row is written.
    assert.deepEqual(await b.insertCertificates([row('02', 2, 1), row('01', 9, 2), row('03', 3, 3), row('03', 8, 4)]), [true, false, true, false]);
    assert.deepEqual((await a.certificates()).map((c) => [c.serialHex, c.der[4]]), [['01', 1], ['02', 2], ['03', 3]]);
    assert.deepEqual(await a.insertCertificates([row('04', 4, 5), row('05', 5, 6)]), [true, true]);
    assert.deepEqual((await b.certificates()).map((c) => c.serialHex), ['01', '02', '03', '04', '05'], 'in the order given');
  }],
  ['several certificates read at once by serial (one grouped read): the issued ones, with their state; unknown serials absent', async (a, b) => {
    await a.insertCertificate('01', ID, 'aa02', at(0), at(60), der(1));
    await a.insertCertificate('02', 'spiffe://example.org/ns/a/sa/c', 'aa02', at(1), at(90), der(2));
    await a.revoke('02', at(5), 'keyCompromise');
    assert.deepEqual(await b.certificatesBySerial([]), new Map());
    const rows = await b.certificatesBySerial(['02', 'ff', '01', '01']);
    assert.deepEqual([...rows.keys()].sort(), ['01', '02']);
    assert.deepEqual(rows.get('01'), await a.certificate('01'), 'the same row certificate() reads');
    assert.deepEqual([rows.get('02')!.spiffeId, rows.get('02')!.status, rows.get('02')!.reason, rows.get('02')!.der], ['spiffe://example.org/ns/a/sa/c', 'revoked', 'keyCompromise', der(2)]);
    assert.deepEqual(await b.certificatesBySerial(['ff', "01') OR ('1'='1"]), new Map(), 'serials are values, never SQL');
    // Inside a transaction the read goes through the transaction's connection and sees its writes.
    await a.transaction(async (tx) => {
      await tx.insertCertificate('03', ID, 'aa02', at(2), at(60), der(3));
      assert.deepEqual([...(await tx.certificatesBySerial(['03'])).keys()], ['03']);
    });
  }],
  ['revoke marks once, counts revocations, and lists per issuer', async (a, b) => {
    await a.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
    await a.insertCertificate('02', ID, 'i2', at(0), at(60), der(2));
    assert.equal(await a.revoke('01', at(3), 'keyCompromise'), true);
    assert.equal(await b.revoke('01', at(4), 'superseded'), false, 'already revoked');
    assert.equal(await b.revoke('ff', at(4), 'superseded'), false, 'unknown');
    assert.deepEqual(await b.crlGenerations(), { revocations: 1n, crl: 0n });
    assert.deepEqual(await b.revokedBy('i1'), [{ serialHex: '01', revokedAt: at(3), reason: 'keyCompromise' }]);
    assert.deepEqual(await b.revokedBy('i2'), []);
    assert.equal((await a.contents()).revoked, 1);
  }],
  ['live certificates are counted per issuer at a moment', async (a) => {
    await a.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
    await a.insertCertificate('02', ID, 'i1', at(0), at(90), der(2));
    await a.insertCertificate('03', ID, 'i2', at(0), at(90), der(3));
    assert.deepEqual(await a.liveCertificates('i1', at(30)), { count: 2, lastNotAfter: at(90) });
    assert.deepEqual(await a.liveCertificates('i1', at(70)), { count: 1, lastNotAfter: at(90) });
    assert.deepEqual(await a.liveCertificates('i1', at(90)), { count: 0, lastNotAfter: null });
  }],
  ['counters start at 0, grow by one across connections, and can be set', async (a, b) => {
    assert.equal(await a.counter('crl_number'), 0n);
    assert.equal(await a.nextCounter('crl_number'), 1n);
    assert.equal(await b.nextCounter('crl_number'), 2n);
    assert.equal(await b.counter('crl_number'), 2n);
    await a.setCounter('ca_generation', 41n);
    assert.equal(await b.nextCounter('ca_generation'), 42n);
    assert.deepEqual(await b.counters(), [{ name: 'ca_generation', value: 42n }, { name: 'crl_number', value: 2n }]);
  }],
  ['a token is used once across connections; unknown, used and expired are named', async (a, b) => {
    await a.createToken('aa'.repeat(32), ID, at(10), at(0));
    await a.createToken('bb'.repeat(32), ID, at(10), at(0));
    assert.deepEqual(await b.consumeToken('cc'.repeat(32), at(1)), { problem: 'unknown' });
    assert.deepEqual(await b.consumeToken('aa'.repeat(32), at(1)), { spiffeId: ID });
    assert.deepEqual(await a.consumeToken('aa'.repeat(32), at(1)), { problem: 'used' });
    assert.deepEqual(await a.consumeToken('bb'.repeat(32), at(10)), { problem: 'expired' }, 'expired at expiresAt exactly');
    assert.deepEqual(await a.consumeToken('bb'.repeat(32), at(9)), { spiffeId: ID });
    const tokens = await b.tokens();
    assert.deepEqual(tokens.map((t) => [t.hashHex.slice(0, 2), t.usedAt?.getTime() ?? null]), [['aa', at(1).getTime()], ['bb', at(9).getTime()]]);
    await assert.rejects(a.createToken('aa'.repeat(32), ID, at(10), at(0)), 'a token hash is unique');
  }],
  ['a transaction commits all its writes together, and a failure inside it leaves nothing (a used token included)', async (a, b) => {
    await a.createToken('aa'.repeat(32), ID, at(10), at(0));
    await assert.rejects(a.transaction(async (tx) => {
      assert.deepEqual(await tx.consumeToken('aa'.repeat(32), at(1)), { spiffeId: ID });
      await tx.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
      throw new Error('signing failed');
    }), /signing failed/);
    assert.equal(await b.certificate('01'), undefined);
    const result = await a.transaction(async (tx) => {
      const used = await tx.consumeToken('aa'.repeat(32), at(2));
      await tx.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
      return used;
    });
    assert.deepEqual(result, { spiffeId: ID });
    assert.ok(await b.certificate('01'));
    assert.deepEqual(await b.consumeToken('aa'.repeat(32), at(3)), { problem: 'used' });
  }],
  ['a CRL is written with its numbers and generations, read back by every connection, and a failed write leaves the old one', async (a, b) => {
    await a.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
    const first = await a.writeCrl(crlDraft(1n), { wait: false });
    assert.equal(first.written, true);
    const stored = (await b.currentCrl())!;
    assert.deepEqual({ ...stored, writtenAt: undefined }, { ...first.crl!, writtenAt: undefined } as unknown as StoredCrl);
    assert.deepEqual([stored.crlNumber, stored.generation, stored.revocations, stored.nextUpdate.getTime()], [1n, 1n, 0n, at(60).getTime()]);
    await assert.rejects(b.writeCrl(crlDraft(2n), {
      wait: true,
      before: async (tx) => {
        assert.equal(await tx.revoke('01', at(5), 'keyCompromise'), true);
        throw new Error('the CA key is missing');
      },
    }), /key is missing/);
    assert.equal((await a.certificate('01'))!.status, 'valid', 'the revocation rolled back with the CRL');
    assert.equal((await a.currentCrl())!.generation, 1n);
    const second = await b.writeCrl(crlDraft(2n), { wait: true, before: async (tx) => void (await tx.revoke('01', at(5), 'keyCompromise')) });
    assert.deepEqual([second.crl!.crlNumber, second.crl!.generation, second.crl!.revocations], [2n, 2n, 1n], 'the CRL covers the revocation made with it');
    assert.deepEqual(await a.crlGenerations(), { revocations: 1n, crl: 2n });
  }],
  ['a listener learns of a revocation and of a CRL written through another connection', async (a, b) => {
    await a.insertCertificate('01', ID, 'i1', at(0), at(60), der(1));
    const seen: { revocations: bigint; crl: bigint }[] = [];
    const stop = a.onCrlChange((g) => seen.push(g), 100);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // the first reading (and LISTEN) is in place
      await b.revoke('01', at(1), 'keyCompromise');
      await waitUntil(() => seen.some((g) => g.revocations === 1n), 'the revocation');
      await b.writeCrl(crlDraft(1n), { wait: false });
      await waitUntil(() => seen.some((g) => g.crl === 1n), 'the CRL write');
    } finally {
      stop();
    }
  }],
  ['import writes rows as they are and clear empties every table', async (a, b) => {
    await a.importCertificate({ serialHex: '01', spiffeId: ID, issuerSerialHex: 'i1', notBefore: at(0), notAfter: at(60), der: der(1), status: 'revoked', revokedAt: at(2), reason: 'superseded' });
    await a.importToken({ hashHex: 'aa'.repeat(32), spiffeId: ID, expiresAt: at(10), usedAt: null, createdAt: at(0) });
    await a.importCrl({ pem: 'x', crlNumber: 7n, thisUpdate: at(0), nextUpdate: at(1), revocations: 1n, generation: 3n, writtenAt: at(0) });
    assert.deepEqual(await b.revokedBy('i1'), [{ serialHex: '01', revokedAt: at(2), reason: 'superseded' }]);
    assert.deepEqual(await b.contents(), { caCertificates: 0, certificates: 1, revoked: 1, tokens: 1, crl: true });
    assert.equal((await b.currentCrl())!.crlNumber, 7n);
    await b.transaction((tx) => tx.clear());
    assert.deepEqual(await a.contents(), { caCertificates: 0, certificates: 0, revoked: 0, tokens: 0, crl: false });
  }],
];

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const backend of backends) {
  describe(`the ${backend.name} store`, () => {
    for (const [what, run] of cases) {
      it(what, async () => {
        const { a, b } = await backend.open();
        try {
          await run(a, b);
        } finally {
          await a.close();
          await b.close();
        }
      });
    }
  });
}
