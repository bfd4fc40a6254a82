// `cert sign` with CSRs from `openssl req` (EC and RSA, PEM and DER, with a URI SAN) and `cert renew`:
// the identity comes from the CSR, the renewed certificate keeps identity and key, a revoked one is refused.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { runCli, runOpenssl, snapshotDir } from '../support/cli.js';
import { opensslVerify } from '../ca/fixtures.js';
import { useCliCa } from '../support/ca-cli.js';

function leafOf(path: string) {
  return parseCertificate(decodePem(readFileSync(path))[0]!.der);
}

describe('meshward cert sign and cert renew', () => {
  const t = useCliCa();
  before(() => assert.equal(t.init.code, 0));

  const kinds: [string, string[], string][] = [
    ['EC', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'PEM'],
    ['RSA', ['-newkey', 'rsa:2048'], 'DER'],
  ];
  for (const [what, newkey, form] of kinds) {
    it(`signs an ${what} CSR from openssl req (${form}); the chain carries the CSR's SPIFFE ID and CN`, async () => {
      const id = `spiffe://example.org/ns/csr/sa/${what.toLowerCase()}`;
      const csr = join(t.dir, `${what}.csr`);
      const req = await runOpenssl(['req', '-new', ...newkey, '-nodes', '-keyout', join(t.dir, `${what}.key`), '-subj', `/CN=${what}-svc`,
        '-addext', `subjectAltName=URI:${id}`, '-outform', form, '-out', csr]);
      assert.equal(req.code, 0, req.stderr);
      const out = join(t.dir, `${what}.crt`);
      const r = await runCli(['cert', 'sign', '--ca-dir', t.ca, '--csr', csr, '--ttl', '2h', '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`signed ${id.replace(/\//g, '\\/')}, serial [0-9a-f]{32}`));
      const leaf = leafOf(out);
      assert.deepEqual(leaf.uris, [id]);
      assert.equal(leaf.subject.cn, `${what}-svc`);
      assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 2 * 3_600_000 + 60_000);
      assert.equal(decodePem(readFileSync(out)).length, 2, 'leaf + intermediate');
      const v = await opensslVerify({ caFile: join(t.ca, 'root.crt'), untrusted: out, cert: out });
      assert.equal(v.code, 0, v.stderr);
    });
  }

  it('renews --in O into --out P with the same identity and key and a new serial; the key stays 0600', async () => {
    const o = join(t.dir, 'renew-in');
    assert.equal((await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', 'spiffe://example.org/renew', '--dns', 'r.example.org', '--out', o])).code, 0);
    const p = join(t.dir, 'renew-out');
    const r = await runCli(['cert', 'renew', '--ca-dir', t.ca, '--in', o, '--out', p]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /renewed spiffe:\/\/example\.org\/renew: new serial [0-9a-f]{32} \(was [0-9a-f]{32}\)/);
    const before = leafOf(join(o, 'tls.crt'));
    const after = leafOf(join(p, 'tls.crt'));
    assert.notEqual(after.serialHex, before.serialHex);
    assert.deepEqual(after.spkiDer, before.spkiDer);
    assert.deepEqual([after.uris, after.dns], [before.uris, before.dns]);
    assert.equal(readFileSync(join(p, 'tls.key'), 'utf8'), readFileSync(join(o, 'tls.key'), 'utf8'));
    assert.equal(statSync(join(p, 'tls.key')).mode & 0o777, 0o600);
    // In place (no --out) works too.
    const inPlace = await runCli(['cert', 'renew', '--ca-dir', t.ca, '--in', p]);
    assert.equal(inPlace.code, 0, inPlace.stderr);
    assert.notEqual(leafOf(join(p, 'tls.crt')).serialHex, after.serialHex);
  });

  it('refuses to renew a revoked certificate with one line, exit 1, and changes neither directory', async () => {
    const o = join(t.dir, 'revoked');
    assert.equal((await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', 'spiffe://example.org/revoked', '--out', o])).code, 0);
    assert.equal((await runCli(['cert', 'revoke', '--ca-dir', t.ca, '--cert', join(o, 'tls.crt'), '--reason', 'superseded'])).code, 0);
    const caBefore = snapshotDir(t.ca);
    const oBefore = snapshotDir(o);
    const r = await runCli(['cert', 'renew', '--ca-dir', t.ca, '--in', o]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: certificate [0-9a-f]+ \(spiffe:\/\/example\.org\/revoked\) was revoked at \S+ \(superseded\): it cannot be renewed; issue a new one\n$/);
    assert.deepEqual(snapshotDir(t.ca), caBefore);
    assert.deepEqual(snapshotDir(o), oBefore);
  });
});
