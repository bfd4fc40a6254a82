// A duration flag whose value does not parse (`--ttl 5x`) is a usage error like an unknown flag: exit 2,
// one line naming the flag, and nothing done (the CA directory byte for byte as it was, no output file).
// A well-formed value the CA refuses (a TTL above maxTtl) stays a refusal, exit 1.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, snapshotDir } from '../support/cli.js';
import { useCliCa } from '../support/ca-cli.js';

describe('malformed duration flags', () => {
  const t = useCliCa();
  const id = 'spiffe://example.org/ns/shop/sa/orders';
  const out = () => join(t.dir, 'never');
  const cases: { what: string; args: () => string[]; flag: string }[] = [
    { what: 'cert issue --ttl 5x', args: () => ['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', id, '--out', out(), '--ttl', '5x'], flag: '--ttl' },
    { what: 'cert issue --ttl=-1h (negative)', args: () => ['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', id, '--out', out(), '--ttl=-1h'], flag: '--ttl' },
    { what: 'token create --ttl 10 (no unit)', args: () => ['token', 'create', '--ca-dir', t.ca, '--spiffe-id', id, '--ttl', '10'], flag: '--ttl' },
    { what: 'ca rotate --activate-in soon', args: () => ['ca', 'rotate', '--dir', t.ca, '--activate-in', 'soon'], flag: '--activate-in' },
    { what: 'ca init --root-ttl 1y', args: () => ['ca', 'init', '--dir', join(t.dir, 'new-ca'), '--trust-domain', 'example.org', '--root-ttl', '1y'], flag: '--root-ttl' },
    { what: 'ca serve --crl-check-interval 5 s', args: () => ['ca', 'serve', '--dir', t.ca, '--listen', '127.0.0.1:0', '--crl-check-interval', '5 s'], flag: '--crl-check-interval' },
    { what: 'ca serve --serving-ttl 1hour', args: () => ['ca', 'serve', '--dir', t.ca, '--listen', '127.0.0.1:0', '--serving-ttl', '1hour'], flag: '--serving-ttl' },
    { what: 'agent --ttl 5x', args: () => ['agent', '--ca', '127.0.0.1:1', '--bundle', join(t.ca, 'bundle.crt'), '--out', out(), '--spiffe-id', id, '--token', 'x', '--ttl', '5x', '--once'], flag: '--ttl' },
  ];

  for (const c of cases) {
    it(`${c.what}: exit 2, one line naming the flag, nothing written`, async () => {
      const before = snapshotDir(t.dir);
      const r = await runCli(c.args());
      assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^meshward: error: ${c.flag} "[^"]*" is not a duration: use a number and a unit`));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(snapshotDir(t.dir), before);
      assert.equal(existsSync(out()), false);
    });
  }

  it('a well-formed TTL the CA refuses (above maxTtl) stays a refusal: exit 1', async () => {
    const r = await runCli(['cert', 'issue', '--ca-dir', t.ca, '--spiffe-id', id, '--out', out(), '--ttl', '25h']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^meshward: error: TTL 25h is above this CA's maximum of 24h/);
  });
});
