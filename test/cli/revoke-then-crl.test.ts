// `cert revoke` then `ca crl`: openssl verify -crl_check_all says revoked for that certificate and OK for
// the others (OpenSSL needs a CRL for every CA in the chain, roots included).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { opensslVerify, tempDir } from '../ca/fixtures.js';

describe('meshward cert revoke and ca crl', () => {
  let t: ReturnType<typeof tempDir>;
  let ca: string;
  const serials: Record<string, string> = {};
  before(async () => {
    t = tempDir();
    ca = join(t.dir, 'ca');
    assert.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org'])).code, 0);
    for (const name of ['a', 'b', 'c']) {
      const r = await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', `spiffe://example.org/${name}`, '--out', join(t.dir, name)]);
      assert.equal(r.code, 0, r.stderr);
      serials[name] = /serial ([0-9a-f]+)/.exec(r.stdout)![1]!;
    }
  });
  after(() => t.cleanup());

  const verify = (name: string, crl: string) => opensslVerify({
    caFile: join(ca, 'root.crt'), untrusted: join(ca, 'intermediate.crt'), cert: join(t.dir, name, 'tls.crt'), crl,
  });

  it('revokes by --serial and by --cert; ca crl --out writes one CRL per CA; openssl says revoked for those two only', async () => {
    const bySerial = await runCli(['cert', 'revoke', '--ca-dir', ca, '--serial', serials.a!, '--reason', 'keyCompromise']);
    assert.equal(bySerial.code, 0, bySerial.stderr);
    assert.match(bySerial.stdout, new RegExp(`revoked spiffe://example\\.org/a, serial ${serials.a}, reason keyCompromise`));
    const byCert = await runCli(['cert', 'revoke', '--ca-dir', ca, '--cert', join(t.dir, 'b', 'tls.crt')]);
    assert.equal(byCert.code, 0, byCert.stderr);
    assert.match(byCert.stdout, /reason unspecified/);

    const out = join(t.dir, 'crls.pem');
    const crl = await runCli(['ca', 'crl', '--dir', ca, '--out', out]);
    assert.equal(crl.code, 0, crl.stderr);
    assert.match(crl.stdout, /wrote 2 CRLs/);
    for (const name of ['a', 'b']) {
      const r = await verify(name, out);
      assert.notEqual(r.code, 0, `${name} must be refused`);
      assert.match(r.stdout + r.stderr, /certificate revoked/);
    }
    const ok = await verify('c', out);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    // D/crl.pem (rewritten by revoke and by ca crl) says the same.
    assert.notEqual((await verify('a', join(ca, 'crl.pem'))).code, 0);
    assert.equal((await verify('c', join(ca, 'crl.pem'))).code, 0);
  });

  it('ca crl without --out prints the CRLs as PEM X509 CRL blocks, which openssl reads', async () => {
    const r = await runCli(['ca', 'crl', '--dir', ca]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/-----BEGIN X509 CRL-----/g)?.length, 2);
    assert.equal(readFileSync(join(ca, 'crl.pem'), 'utf8'), r.stdout);
    const list = await runCli(['ca', 'list', '--dir', ca]);
    assert.match(list.stdout, new RegExp(`${serials.a}.*revoked \\(keyCompromise\\)`));
  });
});
