// Nothing is revoked, yet the CRL never runs out: two `ca serve` replicas on one PostgreSQL with a 30 s
// crlValidity renew it once 40% of its validity has passed (before half), one replica writing each time
// (the decision is taken again under the advisory lock), with strictly increasing CRL numbers, and both
// serve the new CRL by GetCrl. Times are compared on the CA's own timestamps (thisUpdate, nextUpdate), never
// on when the test happened to look.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CrlMessage } from '../../src/ca/server/proto.js';
import { clientFor } from '../ca-service/harness.js';
import { runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { usePostgres } from '../support/postgres.js';
import { useCa } from '../support/ca-fixture.js';

const VALIDITY_S = 30;

describe('the CRL renewed before half of its validity, by one replica at a time', () => {
  const pg = usePostgres();
  const ca = useCa({
    postgres: pg,
    prepare: async ({ dir, store }) => {
      const config = join(dir, 'config.yaml');
      writeFileSync(config, readFileSync(config, 'utf8').replace(/^crlValidity: .*$/m, `crlValidity: ${VALIDITY_S}s`));
      // ca init's CRL has the default week of validity: publish one under the new setting, as `ca crl` does.
      const r = await runCli(['ca', 'crl', '--dir', dir, '--store', store!]);
      assert.equal(r.code, 0, r.stderr);
    },
    processes: { count: 2, args: ['--crl-check-interval', '500ms'] },
  });

  it('serves ever newer CRLs, each written before its predecessor was half through', async () => {
    const clients = ca.processes.map((r) => clientFor(r, ca.dir));
    const seen = new Map<number, CrlMessage>();
    try {
      await waitFor('three CRLs in a row to be served', async () => {
        for (const c of clients) {
          const crl = await c.getCrl(10_000);
          seen.set(crl.crlNumber, crl);
        }
        return seen.size >= 3 ? true : undefined;
      }, { timeoutMs: 180_000, intervalMs: 250 });
    } finally {
      for (const c of clients) c.close();
    }
    const crls = [...seen.values()].sort((a, b) => a.thisUpdate - b.thisUpdate);
    for (let i = 1; i < crls.length; i++) {
      const [prev, next] = [crls[i - 1]!, crls[i]!];
      assert.ok(next.crlNumber > prev.crlNumber, `CRL numbers grow with time (${prev.crlNumber} then ${next.crlNumber})`);
      assert.equal(next.nextUpdate - next.thisUpdate, prev.nextUpdate - prev.thisUpdate, 'every CRL has the configured validity');
      const after = next.thisUpdate - prev.thisUpdate;
      assert.ok(after <= VALIDITY_S / 2, `CRL ${next.crlNumber} was written ${after}s after CRL ${prev.crlNumber}: more than half of ${VALIDITY_S}s`);
      assert.ok(after >= VALIDITY_S * 0.3, `CRL ${next.crlNumber} came only ${after}s after the previous one: renewed too early, or twice`);
    }
    // Every renewal written once: the 'due' writes of both replicas, in time order, are a renewal period apart.
    // `ca serve` writes its log through a buffer (a line waits up to 250 ms, docs/cli.md): the line of the
    // newest renewal may follow the CRL it describes, so wait until the renewals served are logged.
    const dueLines = () => ca.processes.flatMap((r) => r.output().split('\n').filter((l) => l.includes('"event":"crl_written"') && l.includes('"reason":"due"')));
    await waitFor('at least two renewals logged', () => (dueLines().length >= 2 ? true : undefined), { timeoutMs: 10_000 });
    const due = dueLines()
      .map((l) => JSON.parse(l) as { crlNumber: string; nextUpdate: string })
      .sort((a, b) => Date.parse(a.nextUpdate) - Date.parse(b.nextUpdate));
    for (let i = 1; i < due.length; i++) {
      const apart = (Date.parse(due[i]!.nextUpdate) - Date.parse(due[i - 1]!.nextUpdate)) / 1000;
      assert.ok(apart >= VALIDITY_S * 0.3, `renewals ${due[i - 1]!.crlNumber} and ${due[i]!.crlNumber} were written ${apart}s apart: two replicas wrote the same renewal`);
    }
  });
});
