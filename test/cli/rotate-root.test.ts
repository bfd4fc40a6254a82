// `ca rotate --root --activate-in 0s`: leaves from the old and the new chain both verify against bundle.crt;
// `ca rotate --finish` is refused while old leaves live, with a message saying when it will be safe.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, snapshotDir } from '../support/cli.js';
import { opensslVerify } from '../ca/fixtures.js';
import { useCliCa } from '../support/ca-cli.js';

describe('meshward ca rotate --root', () => {
  const t = useCliCa();
  before(async () => {
    assert.equal(t.init.code, 0);
    assert.equal((await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', 'spiffe://example.org/old', '--out', join(t.dir, 'old')])).code, 0);
  });

  it('keeps old-chain leaves valid beside new-chain leaves, against bundle.crt and with CRLs', async () => {
    const r = await runCli(['ca', 'rotate', '--dir', t.ca, '--root', '--activate-in', '0s']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new root CA [0-9a-f]{32}.*added to .*bundle\.crt/);
    assert.match(r.stdout, /it signs from now on/);
    const issued = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', 'spiffe://example.org/new', '--out', join(t.dir, 'new')]);
    assert.equal(issued.code, 0, issued.stderr);
    assert.equal(readFileSync(join(t.ca, 'bundle.crt'), 'utf8').match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.notEqual(readFileSync(join(t.dir, 'old', 'tls.crt'), 'utf8').split('-----END CERTIFICATE-----')[1],
      readFileSync(join(t.dir, 'new', 'tls.crt'), 'utf8').split('-----END CERTIFICATE-----')[1], 'different intermediates');
    for (const name of ['old', 'new']) {
      const v = await opensslVerify({ caFile: join(t.ca, 'bundle.crt'), untrusted: join(t.dir, name, 'tls.crt'), cert: join(t.dir, name, 'tls.crt'), crl: join(t.ca, 'crl.pem') });
      assert.equal(v.code, 0, `${name}: ${v.stdout}${v.stderr}`);
    }
    const list = await runCli(['ca', 'list', '--dir', t.ca]);
    assert.equal(list.stdout.match(/ signing,/g)?.length, 2);
    assert.equal(list.stdout.match(/ trusted,/g)?.length, 2);
  });

  it('refuses rotate --finish while the old leaf lives, saying when, and leaves the directory unchanged', async () => {
    const before = snapshotDir(t.ca);
    const r = await runCli(['ca', 'rotate', '--dir', t.ca, '--finish']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meshward: error: 1 certificate issued by the previous chain is valid until \S+: .*run meshward ca rotate --dir (\S+) --finish after \S+ \(in \d/);
    assert.ok(r.stderr.includes(`--dir ${t.ca} --finish`), 'the command to run later names the CA directory it was about');
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.deepEqual(snapshotDir(t.ca), before);
  });

  it('refuses --finish together with --root (usage error)', async () => {
    const r = await runCli(['ca', 'rotate', '--dir', t.ca, '--finish', '--root']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^meshward: error: .*mutually exclusive/);
  });
});
