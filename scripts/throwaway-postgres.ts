// `make postgres`: a throwaway PostgreSQL to try the CA on (docs/ca-operations.md), started exactly as the
// tests start theirs (test/support/postgres.ts: the machine's server binaries, a temporary directory, trust
// authentication on 127.0.0.1 only, a free port). Prints the DSN; Ctrl-C stops it and removes every file.
import { PostgresCluster } from '../test/support/postgres.js';

const cluster = await PostgresCluster.start();
const dsn = await cluster.createDatabase('meshward');
process.stdout.write([
  `a throwaway PostgreSQL is running on 127.0.0.1:${cluster.port} (data in ${cluster.dir}, removed on exit)`,
  'in another shell:',
  `  export MESHWARD_STORE=${dsn}`,
  '  npx meshward ca init --dir certs/pg-ca --trust-domain example.org',
  '  npx meshward ca serve --dir certs/pg-ca --listen 127.0.0.1:8443    # start a second one on another port: both serve',
  'Ctrl-C stops it.',
  '',
].join('\n'));
// Signal handlers alone do not keep Node running: the interval does, until a signal comes.
const keepAlive = setInterval(() => undefined, 60_000);
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
clearInterval(keepAlive);
await cluster.destroy();
process.stdout.write('stopped and removed\n');
