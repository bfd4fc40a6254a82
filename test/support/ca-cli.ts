// One CA made the way a user makes it, `meshward ca init --dir DIR/NAME --trust-domain example.org` run as a
// real process, for a test file (or describe block) that drives the CLI against it: set up in `before`
// (a failed init fails the file with its stderr), its temporary folder removed in `after`. `init` keeps the
// command's result for tests that check what ca init printed. With `init: false` only the folder (and the
// database) are made, for tests that run ca init themselves.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { runCli, type CommandResult } from './cli.js';
import type { PostgresCluster } from './postgres.js';

export interface CliCaOptions {
  /** The CA directory's name inside the temporary folder (default `ca`). */
  name?: string;
  /** Also make a new database in this cluster (from usePostgres()); its DSN is `dsn`. ca init does not use it. */
  postgres?: { readonly cluster: PostgresCluster };
  /** Run `ca init` (default true). */
  init?: boolean;
}

export interface CliCa {
  /** The temporary folder around the CA, for the files a test writes beside it. */
  readonly dir: string;
  /** The CA's directory, DIR/NAME. */
  readonly ca: string;
  /** The new database's DSN (with `postgres`). */
  readonly dsn: string;
  /** What `ca init` returned. */
  readonly init: CommandResult;
}

export function useCliCa(opts: CliCaOptions = {}): CliCa {
  const state = { dir: '', ca: '', dsn: '', init: { code: -1, stdout: '', stderr: '' } };
  // One before hook: node 20 runs a file's top-level before hooks concurrently.
  before(async () => {
    state.dir = mkdtempSync(join(tmpdir(), 'meshward-'));
    state.ca = join(state.dir, opts.name ?? 'ca');
    if (opts.postgres) state.dsn = await opts.postgres.cluster.createDatabase();
    if (opts.init === false) return;
    state.init = await runCli(['ca', 'init', '--dir', state.ca, '--trust-domain', 'example.org']);
    if (state.init.code !== 0) throw new Error(`ca init failed (exit ${state.init.code}): ${state.init.stderr}`);
  });
  after(() => {
    if (state.dir !== '') rmSync(state.dir, { recursive: true, force: true });
  });
  return state;
}
