// Revocation latency benchmark (`make bench`, part "revocation"): seconds from `meshward cert revoke` to the
// first refused handshake of that caller at a running sidecar, with real processes all along the path
// (ca serve → WatchTrustBundle → meshward agent → crl.pem ..data swap → sidecar). Measured on SQLite (one
// ca serve, which learns of the revocation by polling the store) and on PostgreSQL (two replicas, the agent
// on the second; NOTIFY), each with the default settings and with a tuned `--crl-check-interval`.
// Targets: ≤ 30 s with the defaults, ≤ 5 s tuned. Prints a Markdown table; every wait is bounded.
import { PostgresCluster } from '../test/support/postgres.js';
import { startRevocationMesh, type MeshOptions } from '../test/support/revocation-mesh.js';
import { tcpRoundTrip } from '../test/support/sidecar.js';

const REVOCATIONS = Number(process.env.BENCH_REVOCATIONS ?? 3);
const GIVE_UP_MS = 120_000;
const TUNED_INTERVAL = '250ms';

async function measure(opts: MeshOptions): Promise<number[]> {
  const mesh = await startRevocationMesh(opts);
  try {
    const seconds: number[] = [];
    for (let i = 0; i < REVOCATIONS; i++) {
      const caller = await mesh.caller();
      if ((await tcpRoundTrip(caller.options, 'ping')).result !== 'echoed') throw new Error('a fresh caller was refused before any revocation');
      const start = process.hrtime.bigint();
      await mesh.revoke(caller.serialHex);
      for (;;) {
        if ((await tcpRoundTrip(caller.options, 'ping', 5_000)).result === 'refused') break;
        if (Number(process.hrtime.bigint() - start) / 1e6 > GIVE_UP_MS) throw new Error(`not refused within ${GIVE_UP_MS / 1000} s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    return seconds;
  } finally {
    await mesh.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const rows: { store: string; settings: string; seconds: number[]; target: number }[] = [];
  for (const tuned of [false, true]) {
    rows.push({ store: 'SQLite, 1 ca serve', settings: tuned ? `--crl-check-interval ${TUNED_INTERVAL}` : 'defaults', target: tuned ? 5 : 30,
      seconds: await measure(tuned ? { crlCheckInterval: TUNED_INTERVAL } : {}) });
  }
  let pg: PostgresCluster | undefined;
  try {
    pg = await PostgresCluster.start();
  } catch (err) {
    process.stderr.write(`revocation bench: no PostgreSQL (${(err as Error).message.split('\n')[0]}); SQLite rows only\n`);
  }
  if (pg) {
    try {
      for (const tuned of [false, true]) {
        const store = await pg.createDatabase();
        rows.push({ store: 'PostgreSQL, 2 replicas (agent on the 2nd)', settings: tuned ? `--crl-check-interval ${TUNED_INTERVAL}` : 'defaults', target: tuned ? 5 : 30,
          seconds: await measure({ store, replicas: 2, agentCa: (a) => a[1]!, ...(tuned ? { crlCheckInterval: TUNED_INTERVAL } : {}) }) });
      }
    } finally {
      await pg.destroy();
    }
  }
  const lines = [
    `## Revocation: cert revoke → the sidecar refuses that caller (${REVOCATIONS} revocations each, real processes)`,
    '',
    '| store | ca serve settings | median s | max s | target | met |',
    '|---|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.store} | ${r.settings} | ${median(r.seconds).toFixed(2)} | ${Math.max(...r.seconds).toFixed(2)} | ≤ ${r.target} s | ${Math.max(...r.seconds) <= r.target ? 'yes' : 'NO'} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
