// The CLI front door: `ca init`, `cert issue` for every key type (files, modes, openssl -x509_strict),
// `inspect` in words and JSON, `ca list` in words and JSON.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_TYPES } from '../../src/pki/keys.js';
import { decodePem } from '../../src/pki/pem.js';
import { runCli } from '../support/cli.js';
import { opensslVerify } from '../ca/fixtures.js';
import { useCliCa } from '../support/ca-cli.js';

describe('meshward ca init, cert issue, inspect, ca list', () => {
  const t = useCliCa();
  before(() => {
    assert.equal(t.init.code, 0, t.init.stderr);
    assert.match(t.init.stdout, /created a CA for trust domain example\.org/);
  });

  it('ca init writes the documented files, keys 0600, and no private key on stdout', async () => {
    for (const f of ['root.crt', 'root.key', 'intermediate.crt', 'intermediate.key', 'bundle.crt', 'crl.pem', 'ca.db', 'config.yaml']) {
      assert.ok(statSync(join(t.ca, f)).isFile(), f);
    }
    assert.equal(statSync(join(t.ca, 'root.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(t.ca, 'intermediate.key')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(t.ca, 'bundle.crt'), 'utf8'), readFileSync(join(t.ca, 'root.crt'), 'utf8'));
    assert.match(readFileSync(join(t.ca, 'config.yaml'), 'utf8'), /trustDomain: example\.org\ndefaultTtl: 1h[^\n]*\nmaxTtl: 24h/);
  });

  for (const keyType of KEY_TYPES) {
    it(`cert issue --key-type ${keyType} writes tls.crt (leaf + intermediate), tls.key 0600 and ca.crt that openssl verifies`, async () => {
      const out = join(t.dir, `w-${keyType}`);
      const r = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', `spiffe://example.org/ns/demo/sa/${keyType}`,
        '--dns', 'demo.example.org', '--dns', 'localhost', '--ip', '127.0.0.1', '--ttl', '30m', '--key-type', keyType, '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`issued spiffe://example\\.org/ns/demo/sa/${keyType}, serial [0-9a-f]{32}, valid until`));
      assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);
      const chain = decodePem(readFileSync(join(out, 'tls.crt')));
      assert.deepEqual(chain.map((b) => b.label), ['CERTIFICATE', 'CERTIFICATE']);
      assert.equal(statSync(join(out, 'tls.key')).mode & 0o777, 0o600);
      assert.match(readFileSync(join(out, 'tls.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
      assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), readFileSync(join(t.ca, 'bundle.crt'), 'utf8'));
      const v = await opensslVerify({ caFile: join(t.ca, 'root.crt'), untrusted: join(t.ca, 'intermediate.crt'), cert: join(out, 'tls.crt') });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const viaOutDir = await opensslVerify({ caFile: join(out, 'ca.crt'), untrusted: join(out, 'tls.crt'), cert: join(out, 'tls.crt') });
      assert.equal(viaOutDir.code, 0, viaOutDir.stderr);
    });
  }

  it('inspect describes the chain in words: identity, SANs, validity, issuer, serial, fingerprint', async () => {
    const r = await runCli(['inspect', join(t.dir, 'w-ec-p256', 'tls.crt')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /spiffe:\/\/example\.org\/ns\/demo\/sa\/ec-p256/);
    assert.match(r.stdout, /demo\.example\.org/);
    assert.match(r.stdout, /127\.0\.0\.1/);
    assert.match(r.stdout, /[0-9a-f]{64}/);
    assert.match(r.stdout, /intermediate CA/);
  });

  it('inspect --json prints JSON with one item per certificate', async () => {
    const r = await runCli(['inspect', '--json', join(t.dir, 'w-ec-p256', 'tls.crt')]);
    assert.equal(r.code, 0, r.stderr);
    const items = JSON.parse(r.stdout) as object[];
    assert.equal(items.length, 2);
    assert.match(JSON.stringify(items[0]), /spiffe:\/\/example\.org\/ns\/demo\/sa\/ec-p256/);
  });

  it('ca list shows every issued certificate with serial, identity, not-after and status; --json is machine readable', async () => {
    const text = await runCli(['ca', 'list', '--dir', t.ca]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /SERIAL +IDENTITY +NOT AFTER +STATUS/);
    assert.equal(text.stdout.match(/spiffe:\/\/example\.org\/ns\/demo\/sa\//g)?.length, KEY_TYPES.length);
    const json = await runCli(['ca', 'list', '--dir', t.ca, '--json']);
    const parsed = JSON.parse(json.stdout) as { certificates: { serialHex: string; spiffeId: string; status: string; notAfter: string }[]; authorities: { role: string; status: string }[] };
    assert.equal(parsed.certificates.length, KEY_TYPES.length);
    for (const c of parsed.certificates) {
      assert.match(c.serialHex, /^[0-9a-f]{32}$/);
      assert.equal(c.status, 'valid');
      assert.ok(Date.parse(c.notAfter) > Date.now());
    }
    assert.deepEqual(parsed.authorities.map((a) => [a.role, a.status]), [['root', 'signing'], ['intermediate', 'signing']]);
  });
});
