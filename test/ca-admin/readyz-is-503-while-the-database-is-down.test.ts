// `meshward ca serve --admin` on PostgreSQL (a real process, a real database that the test stops and starts):
// /readyz is 200 while the database answers, 503 with a reason naming the database (never its password)
// while it is stopped, and 200 again once it is back, without restarting the CA. /healthz stays 200 all
// along (the process is alive), and the probe failures are counted in meshward_ca_store_errors_total.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TD } from '../ca-service/harness.js';
import { waitFor } from '../support/poll.js';
import { metricValue } from '../support/sidecar.js';
import { usePostgres } from '../support/postgres.js';
import { useCa } from '../support/ca-fixture.js';

const PASSWORD = 'pw-never-in-readyz-51c2';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

describe(`ca serve --admin on PostgreSQL (${TD})`, () => {
  const pg = usePostgres();
  const ca = useCa({
    postgres: pg,
    // Trust authentication ignores the password, which lets the test check that no answer prints it.
    dsn: (db) => db.replace('postgres@', `postgres:${PASSWORD}@`),
    processes: { args: ['--admin', '127.0.0.1:0'] },
  });

  it('/readyz follows the database: 200, 503 with the reason while it is stopped, 200 after it restarts', async () => {
    assert.ok(ca.serve.adminPort > 0);
    assert.deepEqual(await get(ca.serve.adminPort, '/readyz'), { status: 200, body: '{"ready":true}\n' });

    await pg.cluster.stop();
    const down = await waitFor('/readyz to say 503', async () => {
      const r = await get(ca.serve.adminPort, '/readyz');
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 60_000 });
    const reason = (JSON.parse(down.body) as { ready: boolean; reason: string });
    assert.equal(reason.ready, false);
    assert.match(reason.reason, new RegExp(`postgres://postgres@127\\.0\\.0\\.1:${pg.cluster.port}/`), reason.reason);
    assert.doesNotMatch(down.body, new RegExp(PASSWORD));
    assert.equal((await get(ca.serve.adminPort, '/healthz')).status, 200, 'the process is alive while the database is away');
    // Still 503 on the next probe: not a one-off.
    assert.equal((await get(ca.serve.adminPort, '/readyz')).status, 503);
    const metrics = (await get(ca.serve.adminPort, '/metrics')).body;
    assert.ok(metricValue(metrics, 'meshward_ca_store_errors_total', { operation: 'readiness' }) >= 2, metrics);

    await pg.cluster.start();
    await waitFor('/readyz to say 200 again', async () => ((await get(ca.serve.adminPort, '/readyz')).status === 200 ? true : undefined), { timeoutMs: 60_000 });
    assert.equal(ca.serve.child.exitCode, null, 'the CA was not restarted');
    assert.doesNotMatch(ca.serve.output(), new RegExp(PASSWORD));
  });
});
