// One CA made the way a user makes it, `meshward ca init --dir DIR/NAME --trust-domain example.org` run as a
// real process, for a test file (or describe block) that drives the CLI against it: set up in `before`
// (a failed init fails the file with its stderr), its temporary folder removed in `after`. `init` keeps the
// command's result for tests that check what ca init printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { runCli, type CommandResult } from './cli.js';

export interface CliCa {
  /** The temporary folder around the CA, for the files a test writes beside it. */
  readonly dir: string;
  /** The CA's directory, DIR/NAME. */
  readonly ca: string;
  /** What `ca init` returned. */
  readonly init: CommandResult;
}

export function useCliCa(name = 'ca'): CliCa {
  const state = { dir: '', ca: '', init: { code: -1, stdout: '', stderr: '' } };
  before(async () => {
    state.dir = mkdtempSync(join(tmpdir(), 'meshward-'));
    state.ca = join(state.dir, name);
    state.init = await runCli(['ca', 'init', '--dir', state.ca, '--trust-domain', 'example.org']);
    if (state.init.code !== 0) throw new Error(`ca init failed (exit ${state.init.code}): ${state.init.stderr}`);
  });
  after(() => {
    if (state.dir !== '') rmSync(state.dir, { recursive: true, force: true });
  });
  return state;
}
