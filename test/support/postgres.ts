// A real, throwaway PostgreSQL for tests: the machine's own server binaries (Debian's `postgresql` package,
// /usr/lib/postgresql/<version>/bin, newest version; `.ci/run` installs it when missing), one cluster per
// test file in a temporary directory, trust authentication on 127.0.0.1 only, a free port, the unix socket
// inside the temporary directory. PostgreSQL refuses to run as root, so as root the cluster runs as the
// `postgres` system user (or `nobody`). Never mocked, never skipped: without the binaries a test fails
// with a message saying what to install. Outage tests use stop(), start(), restart() and kill().
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { freePort } from './ports.js';

const PG_ROOT = '/usr/lib/postgresql';

/** The newest installed server version's bin directory. */
export function postgresBinDir(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server binaries in ${PG_ROOT}/*/bin (initdb, pg_ctl): install Debian's postgresql package (apt-get install -y postgresql); .ci/run does so when they are missing`);
  }
  return join(PG_ROOT, versions[0]!, 'bin');
}

/** The unprivileged account to run the server as when this process is root. */
function serverAccount(): { uid: number; gid: number; name: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of ['postgres', 'nobody']) {
    const row = passwd.find((f) => f[0] === name);
    if (row) return { name, uid: Number(row[2]), gid: Number(row[3]) };
  }
  throw new Error('running as root, and neither a postgres nor a nobody account exists to run PostgreSQL as (it refuses to run as root)');
}

export interface PostgresOptions {
  /** Serve TLS with this certificate chain and key (PEM); clients may then use sslmode=verify-full. */
  tls?: { certPem: string; keyPem: string };
  /** Keep PostgreSQL's default durability (fsync, synchronous commit): what the benchmark measures against. */
  durable?: boolean;
}

export class PostgresCluster {
  private pid = 0;
  private readonly onExit = () => this.killNow('SIGQUIT');

  private constructor(
    readonly bin: string,
    readonly dir: string,
    readonly port: number,
    private readonly account: { uid: number; gid: number; name: string } | undefined,
    private readonly settings: string[],
  ) {}

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** A DSN for `database` as the superuser `postgres` (trust authentication: no password). */
  dsn(database = 'postgres', params = ''): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}${params ? `?${params}` : ''}`;
  }

  static async start(opts: PostgresOptions = {}): Promise<PostgresCluster> {
    const bin = postgresBinDir();
    const account = serverAccount();
    const dir = mkdtempSync(join(tmpdir(), 'meshward-pg-'));
    const own = (path: string) => {
      if (account) chownSync(path, account.uid, account.gid);
    };
    own(dir);
    chmodSync(dir, 0o700);
    const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=200',
      // A test cluster: durability against power loss is not what is tested (a killed server still recovers from its WAL).
      ...(opts.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'])];
    if (opts.tls) {
      writeFileSync(join(dir, 'server.crt'), opts.tls.certPem, { mode: 0o644 });
      writeFileSync(join(dir, 'server.key'), opts.tls.keyPem, { mode: 0o600 });
      own(join(dir, 'server.crt'));
      own(join(dir, 'server.key'));
      settings.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${join(dir, 'server.key')}`);
    }
    const init = spawnSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
      cwd: dir, env: { ...process.env, HOME: dir, LC_ALL: 'C' }, encoding: 'utf8', ...(account ? { uid: account.uid, gid: account.gid } : {}),
    });
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
    }
    // Only TCP from 127.0.0.1 and the private socket, trust for both (initdb's default pg_hba.conf already is).
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const cluster = new PostgresCluster(bin, dir, await freePort(), account, settings);
      try {
        await cluster.start();
        return cluster;
      } catch (err) {
        lastError = err; // the port was taken between probing and binding: try another
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  private run(args: string[]): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(join(this.bin, 'pg_ctl'), args, {
        cwd: this.dir, env: { ...process.env, HOME: this.dir, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'],
        ...(this.account ? { uid: this.account.uid, gid: this.account.gid } : {}),
      });
      let output = '';
      child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
      child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 1, output });
      });
    });
  }

  /** Starts the server (again, on the same port) and waits until it accepts connections. */
  async start(): Promise<void> {
    const opts = [...this.settings, '-p', String(this.port)].map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ');
    let last = '';
    // Right after a kill -9 the old server's backends may still hold shared memory for a moment.
    for (let attempt = 0; attempt < 10; attempt++) {
      const r = await this.run(['start', '-w', '-t', '60', '-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-o', opts]);
      if (r.code === 0) {
        this.pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.on('exit', this.onExit);
        return;
      }
      last = `${r.output}\n${existsSync(join(this.dir, 'server.log')) ? readFileSync(join(this.dir, 'server.log'), 'utf8').slice(-2000) : ''}`;
      if (/Address already in use|could not bind/i.test(last)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error(`pg_ctl start failed on port ${this.port}: ${last}`);
  }

  /** A fast shutdown (clients are disconnected, the server stops cleanly). */
  async stop(): Promise<void> {
    if (this.pid === 0) return;
    const r = await this.run(['stop', '-w', '-t', '60', '-m', 'fast', '-D', this.dataDir]);
    if (r.code !== 0 && isAlive(this.pid)) throw new Error(`pg_ctl stop failed: ${r.output}`);
    this.forget();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** kill -9 of the postmaster: the database vanishes without a goodbye to its clients. */
  async kill(): Promise<void> {
    const pid = this.pid;
    this.killNow('SIGKILL');
    this.forget();
    const deadline = Date.now() + 30_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  }

  private killNow(signal: NodeJS.Signals): void {
    if (this.pid !== 0) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  private forget(): void {
    this.pid = 0;
    process.off('exit', this.onExit);
  }

  /** A new empty database; returns its DSN (optionally with query parameters). */
  async createDatabase(name = `mw_${Math.random().toString(36).slice(2, 10)}`, params = ''): Promise<string> {
    await this.sql(`CREATE DATABASE "${name}"`);
    return this.dsn(name, params);
  }

  /** Runs SQL as the superuser (in `database`, default postgres) and returns the rows. */
  async sql<T = Record<string, unknown>>(text: string, values: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.dsn(database) });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  }

  /** Stops the server at once and removes every file. */
  async destroy(): Promise<void> {
    if (this.pid !== 0) {
      await this.run(['stop', '-w', '-t', '30', '-m', 'immediate', '-D', this.dataDir]).catch(() => undefined);
      this.killNow('SIGKILL');
      this.forget();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One cluster for the calling test file: started in `before`, destroyed in `after`. */
export function usePostgres(opts: PostgresOptions | (() => PostgresOptions | Promise<PostgresOptions>) = {}): { readonly cluster: PostgresCluster } {
  let cluster: PostgresCluster | undefined;
  before(async () => {
    cluster = await PostgresCluster.start(typeof opts === 'function' ? await opts() : opts);
  });
  after(async () => {
    await cluster?.destroy();
  });
  return {
    get cluster(): PostgresCluster {
      if (!cluster) throw new Error('the PostgreSQL cluster is not started (use it inside tests, after before())');
      return cluster;
    },
  };
}
