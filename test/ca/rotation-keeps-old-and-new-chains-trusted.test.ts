// Rotation: `rotate({root: true})` puts the new root in bundle.crt beside the old one, leaves of both chains
// verify against the bundle (openssl), the new chain signs only from its activation time, and
// `finishRotation` refuses while old leaves live and retires the old chain once they have expired.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { snapshotDir } from '../support/cli.js';
import { HOUR, OPEN_DB_VOLATILE, opensslVerify } from './fixtures.js';
import { withAuthority } from '../support/ca-authority.js';

function pemCount(path: string, label: string): number {
  return decodePem(readFileSync(path)).filter((b) => b.label === label).length;
}

describe('CA rotation', () => {
  it('rotate --root with activation 0: old and new leaves both verify against bundle.crt, with CRL checks', async () => {
    const now = new Date();
    await withAuthority({}, now, async (fx) => {
      const old = await fx.ca.issue({ spiffeId: 'spiffe://example.org/old' }, now);
      const r = await fx.ca.rotate({ root: true, activateInMs: 0 }, now);
      assert.ok(r.root);
      assert.equal(r.activatesAt.getTime(), now.getTime());
      const fresh = await fx.ca.issue({ spiffeId: 'spiffe://example.org/new' }, now);
      assert.equal(parseCertificate(fresh.chainDer[1]!).serialHex, r.intermediate.serialHex, 'the new intermediate signs at once');
      assert.notDeepEqual(old.chainDer[1], fresh.chainDer[1]);
      const bundle = join(fx.caDir, 'bundle.crt');
      assert.equal(pemCount(bundle, 'CERTIFICATE'), 2);
      assert.equal(fresh.bundlePem, readFileSync(bundle, 'utf8'));
      assert.equal(pemCount(join(fx.caDir, 'crl.pem'), 'X509 CRL'), 4, 'one CRL per trusted CA certificate');
      // root.crt / intermediate.crt now name the new chain.
      assert.equal(parseCertificate(decodePem(readFileSync(join(fx.caDir, 'root.crt')))[0]!.der).serialHex, r.root.serialHex);
      for (const [name, issued] of [['old', old], ['new', fresh]] as const) {
        const chain = fx.file(`${name}-chain.crt`, issued.chainPem);
        const leaf = fx.file(`${name}.crt`, issued.certificatePem);
        const v = await opensslVerify({ caFile: bundle, untrusted: chain, cert: leaf, crl: join(fx.caDir, 'crl.pem') });
        assert.equal(v.code, 0, `${name}: ${v.stdout}${v.stderr}`);
      }
    });
  });

  it('finishRotation refuses while an old leaf lives, says when it is safe, and changes nothing', async () => {
    const now = new Date();
    await withAuthority({}, now, async (fx) => {
      const old = await fx.ca.issue({ spiffeId: 'spiffe://example.org/old', ttlMs: 2 * HOUR }, now);
      const oldRoot = (await fx.ca.authorities(now)).find((a) => a.role === 'root')!;
      await fx.ca.rotate({ root: true, activateInMs: 0 }, now);
      const before = snapshotDir(fx.caDir, OPEN_DB_VOLATILE);
      await assert.rejects(() => fx.ca.finishRotation(new Date(now.getTime() + HOUR)), (err: Error & { code: string }) => {
        assert.equal(err.code, 'failed_precondition');
        assert.match(err.message, /1 certificate issued by the previous chain is valid until/);
        assert.ok(err.message.includes(old.notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z')), err.message);
        assert.match(err.message, /\(in (59m\d+s|1h)\)/);
        return true;
      });
      assert.deepEqual(snapshotDir(fx.caDir, OPEN_DB_VOLATILE), before);

      const later = new Date(old.notAfter.getTime() + 1000);
      const done = await fx.ca.finishRotation(later);
      assert.deepEqual(done.retired.map((c) => c.role).sort(), ['intermediate', 'root']);
      assert.ok(done.retired.some((c) => c.serialHex === oldRoot.serialHex));
      assert.equal(pemCount(join(fx.caDir, 'bundle.crt'), 'CERTIFICATE'), 1);
      assert.equal(pemCount(join(fx.caDir, 'crl.pem'), 'X509 CRL'), 2);
      for (const c of done.retired) {
        assert.equal(existsSync(fx.ca.layout.issuerKey(c.role, c.serialHex)), false, 'a retired CA key is deleted');
        assert.equal(existsSync(fx.ca.layout.issuerCert(c.role, c.serialHex)), true, 'its certificate is kept');
      }
      const statuses = (await fx.ca.authorities(later)).map((a) => a.status).sort();
      assert.deepEqual(statuses, ['retired', 'retired', 'signing', 'signing']);
      await assert.rejects(() => fx.ca.finishRotation(later), /nothing to finish/);
      // The CA keeps issuing from the new chain.
      await fx.ca.issue({ spiffeId: 'spiffe://example.org/after' }, later);
    });
  });

  it('a pending root rotation adds the root to the bundle at once but signs with the old chain until activation', async () => {
    const now = new Date();
    await withAuthority({}, now, async (fx) => {
      const current = (await fx.ca.authorities(now)).find((a) => a.role === 'intermediate')!;
      const r = await fx.ca.rotate({ root: true }, now);
      assert.equal(r.activatesAt.getTime(), now.getTime() + HOUR, 'default activation: the default TTL');
      assert.equal(pemCount(join(fx.caDir, 'bundle.crt'), 'CERTIFICATE'), 2);
      const before = await fx.ca.issue({ spiffeId: 'spiffe://example.org/a' }, new Date(now.getTime() + HOUR - 1000));
      assert.equal(parseCertificate(before.chainDer[1]!).serialHex, current.serialHex);
      await assert.rejects(() => fx.ca.rotate({}, now), /already pending/);
      await assert.rejects(() => fx.ca.finishRotation(now), /signs only from/);
      assert.equal((await fx.ca.authorities(now)).filter((a) => a.status === 'pending').length, 2);

      const activated = new Date(now.getTime() + HOUR);
      const after = await fx.ca.issue({ spiffeId: 'spiffe://example.org/b' }, activated);
      assert.equal(parseCertificate(after.chainDer[1]!).serialHex, r.intermediate.serialHex);
      const intermediateFile = parseCertificate(decodePem(readFileSync(join(fx.caDir, 'intermediate.crt')))[0]!.der);
      assert.equal(intermediateFile.serialHex, r.intermediate.serialHex, 'intermediate.crt follows the activation');
    });
  });

  it('an intermediate-only rotation keeps the root; both intermediates chain to root.crt until finish', async () => {
    const now = new Date();
    await withAuthority({}, now, async (fx) => {
      const old = await fx.ca.issue({ spiffeId: 'spiffe://example.org/old', ttlMs: HOUR }, now);
      const r = await fx.ca.rotate({}, now);
      assert.equal(r.root, undefined);
      const fresh = await fx.ca.issue({ spiffeId: 'spiffe://example.org/new' }, now);
      assert.equal(parseCertificate(fresh.chainDer[1]!).serialHex, r.intermediate.serialHex);
      assert.equal(pemCount(join(fx.caDir, 'bundle.crt'), 'CERTIFICATE'), 1);
      assert.equal(pemCount(join(fx.caDir, 'crl.pem'), 'X509 CRL'), 3);
      for (const [name, issued] of [['old', old], ['new', fresh]] as const) {
        const v = await opensslVerify({
          caFile: join(fx.caDir, 'root.crt'), untrusted: fx.file(`${name}-chain.crt`, issued.chainPem), cert: fx.file(`${name}.crt`, issued.certificatePem),
          crl: join(fx.caDir, 'crl.pem'),
        });
        assert.equal(v.code, 0, `${name}: ${v.stdout}${v.stderr}`);
      }
      const done = await fx.ca.finishRotation(new Date(old.notAfter.getTime() + 1));
      assert.deepEqual(done.retired.map((c) => c.role), ['intermediate']);
    });
  });
});
