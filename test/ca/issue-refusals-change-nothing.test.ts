// Authority.issue / init / open refusals, each a MeshwardError with a sentence naming the problem, and the
// CA directory unchanged (every check runs before the first write).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../../src/ca/authority.js';
import { snapshotDir } from '../support/cli.js';
import { HOUR, ISSUE_REFUSALS, OPEN_DB_VOLATILE, T0, TD, tempDir } from './fixtures.js';
import { useAuthority } from '../support/ca-authority.js';

describe('Authority refusals', () => {
  const now = new Date(T0.getTime() + HOUR);
  const fx = useAuthority({}, T0);

  for (const [what, req, code, expected] of ISSUE_REFUSALS) {
    it(`refuses to issue for ${what}`, async () => {
      const before = snapshotDir(fx.caDir, OPEN_DB_VOLATILE);
      await assert.rejects(() => fx.ca.issue(req, now), (err: Error & { code: string }) => {
        assert.equal(err.name, 'MeshwardError');
        assert.equal(err.code, code);
        assert.match(err.message, expected);
        assert.doesNotMatch(err.message, /PRIVATE KEY/);
        return true;
      });
      assert.deepEqual(snapshotDir(fx.caDir, OPEN_DB_VOLATILE), before);
    });
  }

  it('refuses IDs that config.yaml does not allow', async () => {
    const t = tempDir();
    try {
      const dir = join(t.dir, 'ca');
      await (await Authority.init(dir, { trustDomain: TD }, T0)).close();
      writeFileSync(join(dir, 'config.yaml'), 'trustDomain: example.org\nallowedSpiffeIds: ["spiffe://example.org/ns/*/sa/*"]\n');
      const ca = await Authority.open(dir);
      try {
        assert.equal((await ca.issue({ spiffeId: 'spiffe://example.org/ns/a/sa/b' }, now)).spiffeId, 'spiffe://example.org/ns/a/sa/b');
        await assert.rejects(() => ca.issue({ spiffeId: 'spiffe://example.org/ns/a/sa/b/c' }, now), { code: 'permission_denied', message: /not allowed by this CA/ });
      } finally {
        await ca.close();
      }
    } finally {
      t.cleanup();
    }
  });

  it('refuses an intermediate that has expired instead of issuing a leaf that outlives it', async () => {
    await assert.rejects(() => fx.ca.issue({ spiffeId: 'spiffe://example.org/a' }, new Date(T0.getTime() + 8761 * HOUR)), /expired at .*ca rotate/);
  });

  it('init refuses an existing CA without force, a file as directory, and bad settings, changing nothing', async () => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, 'file'), 'x');
      mkdirSync(join(t.dir, 'empty'));
      const before = snapshotDir(t.dir);
      await assert.rejects(() => Authority.init(fx.caDir, { trustDomain: TD }, now), { code: 'already_exists' });
      await assert.rejects(() => Authority.init(join(t.dir, 'file'), { trustDomain: TD }, now), /is a file/);
      await assert.rejects(() => Authority.init(join(t.dir, 'empty'), { trustDomain: 'Example.org' }, now), /lowercase/);
      await assert.rejects(() => Authority.init(join(t.dir, 'empty'), { trustDomain: TD, rootTtlMs: 0 }, now), /root TTL must be positive/);
      await assert.rejects(() => Authority.init(join(t.dir, 'empty'), { trustDomain: TD, intermediateTtlMs: HOUR }, now), /longer than the maximum leaf TTL/);
      await assert.rejects(() => Authority.init(join(t.dir, 'new'), { trustDomain: TD, keyType: 'dsa' as never }, now), /Unknown key type/);
      assert.deepEqual(snapshotDir(t.dir), before);
    } finally {
      t.cleanup();
    }
  });

  it('init --force replaces a CA with a new root', async () => {
    const t = tempDir();
    try {
      const dir = join(t.dir, 'ca');
      const first = await Authority.init(dir, { trustDomain: TD }, T0);
      const oldRoot = (await first.authorities(T0))[0]!.serialHex;
      await first.issue({ spiffeId: 'spiffe://example.org/a' }, now);
      await first.close();
      const second = await Authority.init(dir, { trustDomain: TD, force: true }, T0);
      try {
        assert.notEqual((await second.authorities(T0))[0]!.serialHex, oldRoot);
        assert.equal((await second.authorities(T0)).length, 2);
        assert.deepEqual(await second.list(now), []);
      } finally {
        await second.close();
      }
    } finally {
      t.cleanup();
    }
  });

  it('open refuses a missing directory, a directory without ca.db and a file', async () => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, 'file'), 'x');
      await assert.rejects(() => Authority.open(join(t.dir, 'missing')), { code: 'not_found', message: /there is no CA directory/ });
      await assert.rejects(() => Authority.open(t.dir), { code: 'not_found', message: /has no ca\.db/ });
      await assert.rejects(() => Authority.open(join(t.dir, 'file')), /is a file, not a CA directory/);
    } finally {
      t.cleanup();
    }
  });
});
