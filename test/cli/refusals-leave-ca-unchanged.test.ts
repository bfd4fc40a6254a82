// Bad input, each refused with one line on stderr starting `meshward: error:` and exit 1 or 2, leaving the
// CA directory byte-for-byte unchanged (and issuing nothing).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDerOrPem, encodePem } from '../../src/pki/pem.js';
import { runCli, runOpenssl, snapshotDir, type RunOptions } from '../support/cli.js';
import { tempDir } from '../ca/fixtures.js';

interface Case {
  what: string;
  args: () => string[];
  code: 1 | 2;
  stderr: RegExp;
  opts?: () => RunOptions;
  setup?: () => void;
  teardown?: () => void;
}

describe('refusals leave the CA directory unchanged', () => {
  let t: ReturnType<typeof tempDir>;
  let ca: string;
  const f = (name: string) => join(t.dir, name);

  async function csr(name: string, newkey: string[], san?: string): Promise<string> {
    const args = ['req', '-new', ...newkey, '-nodes', '-keyout', f(`${name}.key`), '-subj', '/CN=x', '-out', f(`${name}.csr`)];
    if (san) args.push('-addext', `subjectAltName=${san}`);
    const r = await runOpenssl(args);
    assert.equal(r.code, 0, r.stderr);
    return f(`${name}.csr`);
  }

  before(async () => {
    t = tempDir();
    ca = f('ca');
    assert.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org'])).code, 0);
    assert.equal((await runCli(['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/revoked', '--out', f('revoked')])).code, 0);
    assert.equal((await runCli(['cert', 'revoke', '--ca-dir', ca, '--cert', f('revoked/tls.crt')])).code, 0);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    const good = readFileSync(await csr('good', ec, 'URI:spiffe://example.org/good'), 'utf8');
    writeFileSync(f('malformed.csr'), '-----BEGIN CERTIFICATE REQUEST-----\nthis is not base64 !!!\n-----END CERTIFICATE REQUEST-----\n');
    writeFileSync(f('truncated.csr'), good.slice(0, Math.floor(good.length / 2)));
    writeFileSync(f('garbage.csr'), 'hello, I am not a CSR\n');
    const der = Buffer.from(readDerOrPem(Buffer.from(good), 'CERTIFICATE REQUEST')[0]!);
    const at = der.indexOf(Buffer.from('spiffe://example.org/good'));
    der[at + 21] ^= 0x01; // the signed identity changes: the signature no longer matches
    writeFileSync(f('badsig.csr'), encodePem('CERTIFICATE REQUEST', der));
    await csr('nouri', ec, 'DNS:a.example.org');
    await csr('twouris', ec, 'URI:spiffe://example.org/a,URI:spiffe://example.org/b');
    await csr('rsa1024', ['-newkey', 'rsa:1024'], 'URI:spiffe://example.org/weak');
    await csr('othertd', ec, 'URI:spiffe://other.org/a');
    mkdirSync(f('empty-dir'));
    writeFileSync(f('a-file'), 'not a directory\n');
  });
  after(() => {
    chmodSync(ca, 0o700);
    t.cleanup();
  });

  const issue = (id: string, ...extra: string[]) => () => ['cert', 'issue', '--ca-dir', ca, '--spiffe-id', id, '--out', f('never'), ...extra];
  const sign = (file: string) => () => ['cert', 'sign', '--ca-dir', ca, '--csr', f(file), '--out', f('never.crt')];
  const cases: Case[] = [
    { what: 'a malformed PEM CSR', args: sign('malformed.csr'), code: 1, stderr: /base64/ },
    { what: 'a truncated PEM CSR', args: sign('truncated.csr'), code: 1, stderr: /truncated|no END/ },
    { what: 'a file that is neither PEM nor DER', args: sign('garbage.csr'), code: 1, stderr: /neither PEM nor DER/ },
    { what: 'a CSR with a broken signature', args: sign('badsig.csr'), code: 1, stderr: /signature/i },
    { what: 'a CSR with no URI SAN', args: sign('nouri.csr'), code: 1, stderr: /0 URI SANs/ },
    { what: 'a CSR with two URI SANs', args: sign('twouris.csr'), code: 1, stderr: /2 URI SANs/ },
    { what: 'a CSR with an RSA 1024 key', args: sign('rsa1024.csr'), code: 1, stderr: /1024 bits/ },
    { what: 'a CSR for another trust domain', args: sign('othertd.csr'), code: 1, stderr: /outside this CA's trust domain/ },
    { what: 'a missing CSR file', args: sign('no-such.csr'), code: 1, stderr: /does not exist/ },
    { what: 'a SPIFFE ID outside the trust domain', args: issue('spiffe://other.org/ns/a'), code: 1, stderr: /outside this CA's trust domain example\.org/ },
    { what: 'an uppercase trust domain', args: issue('spiffe://Example.org/a'), code: 1, stderr: /lowercase/ },
    { what: 'a ".." segment', args: issue('spiffe://example.org/a/../b'), code: 1, stderr: /"\.\." segment/ },
    { what: 'an empty segment', args: issue('spiffe://example.org/a//b'), code: 1, stderr: /empty segment/ },
    { what: 'a trailing "/"', args: issue('spiffe://example.org/a/'), code: 1, stderr: /end with "\/"/ },
    { what: 'a port', args: issue('spiffe://example.org:8443/a'), code: 1, stderr: /port/ },
    { what: 'userinfo', args: issue('spiffe://user@example.org/a'), code: 1, stderr: /user info/ },
    { what: 'percent-encoding', args: issue('spiffe://example.org/a%20b'), code: 1, stderr: /percent-encoding/ },
    { what: 'an ID over 2048 bytes', args: issue(`spiffe://example.org/${'a'.repeat(2040)}`), code: 1, stderr: /2048 bytes/ },
    { what: 'the trust domain ID itself', args: issue('spiffe://example.org'), code: 1, stderr: /needs a path/ },
    { what: 'an RSA key under 2048 bits', args: issue('spiffe://example.org/a', '--key-type', 'rsa-1024'), code: 2, stderr: /Invalid values:.*key-type/ },
    { what: 'a TTL above the max', args: issue('spiffe://example.org/a', '--ttl', '25h'), code: 1, stderr: /TTL 25h is above this CA's maximum of 24h/ },
    { what: 'a zero TTL', args: issue('spiffe://example.org/a', '--ttl', '0s'), code: 1, stderr: /TTL must be positive/ },
    { what: 'a negative TTL', args: issue('spiffe://example.org/a', '--ttl=-1h'), code: 2, stderr: /not a duration/ },
    { what: 'a bad DNS name', args: issue('spiffe://example.org/a', '--dns', 'bad_name!'), code: 1, stderr: /not a valid hostname/ },
    { what: 'a bad IP address', args: issue('spiffe://example.org/a', '--ip', '999.1.1.1'), code: 1, stderr: /not an IPv4 or IPv6 address/ },
    { what: 'an --out that is a file', args: () => ['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/a', '--out', f('a-file')], code: 1, stderr: /is a file/ },
    { what: 'an unknown flag', args: issue('spiffe://example.org/a', '--tll', '1h'), code: 2, stderr: /Unknown argument: tll/ },
    { what: 'a missing required flag', args: () => ['cert', 'issue', '--ca-dir', ca, '--out', f('never')], code: 2, stderr: /Missing required argument: spiffe-id/ },
    // Every command on a CA directory names itself in its usage errors, token create and ca serve too.
    { what: 'an unknown flag to token create', args: () => ['token', 'create', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/a', '--tll', '1m'], code: 2, stderr: /Unknown argument: tll \(see meshward token create --help\)/ },
    { what: 'an unknown flag to ca serve', args: () => ['ca', 'serve', '--dir', ca, '--listen', '127.0.0.1:0', '--admn', '127.0.0.1:0'], code: 2, stderr: /Unknown argument: admn \(see meshward ca serve --help\)/ },
    { what: 'ca serve without --listen', args: () => ['ca', 'serve', '--dir', ca], code: 2, stderr: /Missing required argument: listen \(see meshward ca serve --help\)/ },
    { what: 'ca init over an existing CA without --force', args: () => ['ca', 'init', '--dir', ca, '--trust-domain', 'example.org'], code: 1, stderr: /already holds a CA .*--force/ },
    { what: 'ca init with an invalid trust domain', args: () => ['ca', 'init', '--dir', ca, '--trust-domain', 'Bad_Domain', '--force'], code: 1, stderr: /trust domain "Bad_Domain" is not valid/ },
    { what: 'an unknown serial to revoke', args: () => ['cert', 'revoke', '--ca-dir', ca, '--serial', '0123456789abcdef0123456789abcdef'], code: 1, stderr: /no certificate with serial 0123456789abcdef0123456789abcdef/ },
    { what: 'an unknown revocation reason', args: () => ['cert', 'revoke', '--ca-dir', ca, '--serial', 'ab', '--reason', 'whim'], code: 2, stderr: /Invalid values:.*reason/ },
    { what: 'renewing a revoked certificate', args: () => ['cert', 'renew', '--ca-dir', ca, '--in', f('revoked'), '--out', f('never')], code: 1, stderr: /was revoked at/ },
    { what: 'a CA directory that does not exist', args: () => ['ca', 'list', '--dir', f('no-such-dir')], code: 1, stderr: /there is no CA directory at .*ca init/ },
    { what: 'a directory without ca.db', args: () => ['cert', 'issue', '--ca-dir', f('empty-dir'), '--spiffe-id', 'spiffe://example.org/a', '--out', f('never')], code: 1, stderr: /is not a CA directory \(it has no ca\.db\)/ },
    { what: 'a file where the CA directory is expected', args: () => ['ca', 'crl', '--dir', f('a-file')], code: 1, stderr: /is a file, not a CA directory/ },
    {
      what: 'an unreadable CA directory (mode 000, run as an unprivileged user)',
      args: () => ['cert', 'issue', '--ca-dir', ca, '--spiffe-id', 'spiffe://example.org/a', '--out', '/tmp/meshward-never'],
      code: 1,
      stderr: /cannot read the CA directory .*permission denied/,
      // Root reads every file whatever its mode, so the refusal is shown for an ordinary user.
      opts: () => (process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
      setup: () => {
        chmodSync(t.dir, 0o755);
        chmodSync(ca, 0o000);
      },
      teardown: () => {
        chmodSync(ca, 0o700);
        chmodSync(t.dir, 0o700);
      },
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.what}: one line, exit ${c.code}, nothing changed`, async () => {
      const before = snapshotDir(t.dir);
      c.setup?.();
      let r;
      try {
        r = await runCli(c.args(), c.opts?.());
      } finally {
        c.teardown?.();
      }
      assert.equal(r.code, c.code, `exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^meshward: error: [^\n]+\n$/, 'exactly one line');
      assert.match(r.stderr, c.stderr);
      assert.doesNotMatch(r.stderr, /PRIVATE KEY|\n {4}at /);
      assert.deepEqual(snapshotDir(t.dir), before);
    });
  }

  it('issued nothing while refusing', async () => {
    const r = await runCli(['ca', 'list', '--dir', ca, '--json']);
    const listed = JSON.parse(r.stdout) as { certificates: { spiffeId: string }[] };
    assert.deepEqual(listed.certificates.map((c) => c.spiffeId), ['spiffe://example.org/revoked']);
  });
});
