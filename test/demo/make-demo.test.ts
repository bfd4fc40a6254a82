// `make demo` passes as a test of its own (issue 5): scripts/demo.sh (what `make demo` runs after the build)
// is run in its own process group with its own output folder, and must exit 0 having shown an allowed call,
// a denied call with its reason, a rotation with no failed call, the metrics that moved and the curl that
// reads the dashboard's series from the live sidecar and CA; afterwards no
// process it started may be left, and what it writes under certs/demo must be ignored by git.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FRONTEND_ID = 'spiffe://example.org/ns/shop/sa/frontend';
/** Generous: the demo takes about 25 s alone, and bounds itself at 100 s. */
const RUN_TIMEOUT_MS = 150_000;

let tmp: string;
let outDir: string;
let run: { code: number | null; signal: string | null; stdout: string; stderr: string; pgid: number };

/** PIDs still alive in process group `pgid` (ps prints nothing when the group is empty). */
function processGroupMembers(pgid: number): string[] {
  const r = spawnSync('ps', ['-o', 'pid=,args=', '-g', String(pgid)], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (lstatSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'meshward-'));
  outDir = join(tmp, 'demo');
  // detached: the demo and everything it starts share a new process group we can inspect afterwards.
  const child = spawn('bash', [join(REPO_ROOT, 'scripts', 'demo.sh'), '--dir', outDir], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid!;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => {
    stderr += `\n[test] the demo did not end within ${RUN_TIMEOUT_MS / 1000}s: killing its process group\n`;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, RUN_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  run = { code, signal, stdout, stderr, pgid };
});

after(() => {
  if (run && processGroupMembers(run.pgid).length > 0) {
    try {
      process.kill(-run.pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

test('make demo exits 0 and says that everything it showed behaved as expected', () => {
  assert.equal(run.code, 0, `exit ${run.code ?? run.signal}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(run.stdout, /Demo passed in \d+s: allowed call 200, denied call 403, serial changed, 0 failed calls\./);
  assert.doesNotMatch(run.stdout, /FAILED/);
});

test('it shows an allowed call with the caller identity the orders app saw, and a denied call with its reason', () => {
  assert.match(run.stdout, new RegExp(`→ HTTP 200; the orders app saw caller ${FRONTEND_ID} with scopes "orders:read"`));
  assert.match(run.stdout, /→ HTTP 403 forbidden: missing scope orders:write \(decided by policy rule routes\[1\]\)/);
  assert.match(run.stdout, /the orders app never saw the request/);
});

test('it inspects the orders certificate and shows a rotation under load with no failed call', () => {
  assert.match(run.stdout, /identity\s+spiffe:\/\/example\.org\/ns\/shop\/sa\/orders/);
  const m = /orders: +serial ([0-9a-f]+) → serial ([0-9a-f]+), (\d+) calls, (\d+) failed/.exec(run.stdout);
  assert.ok(m, run.stdout);
  assert.notEqual(m[1], m[2], 'the serial changed');
  assert.ok(Number(m[3]) > 0, 'calls were made during the rotation');
  assert.equal(m[4], '0');
  const f = /frontend: serial ([0-9a-f]+) → serial ([0-9a-f]+), renewed too/.exec(run.stdout);
  assert.ok(f, run.stdout);
  assert.notEqual(f[1], f[2]);
});

test('it prints the metrics counters that moved: allowed and denied requests, credential reloads', () => {
  assert.match(run.stdout, new RegExp(`meshward_requests_total\\{decision="allow",route="routes\\[0\\]",identity="${FRONTEND_ID}"\\} \\d+`));
  assert.match(run.stdout, new RegExp(`meshward_requests_total\\{decision="deny",route="routes\\[1\\]",identity="${FRONTEND_ID}"\\} 1 `));
  assert.match(run.stdout, /meshward_reloads_total\{kind="credentials",result="success"\} \d+ +\(\+\d+ during the demo\)/);
});

test('it prints the curl that reads the dashboard\'s series from the live sidecar and CA, and their values', () => {
  assert.match(run.stdout, /\$ curl -s http:\/\/127\.0\.0\.1:\d+\/metrics \| grep -E '\^\(meshward_certificate_expiry_seconds\|.*# orders sidecar/);
  assert.match(run.stdout, /^ +meshward_certificate_expiry_seconds\{certificate="serving"\} \d+$/m);
  assert.match(run.stdout, /^ +meshward_crl_next_update_timestamp_seconds \d+$/m);
  assert.match(run.stdout, /\$ curl -s http:\/\/127\.0\.0\.1:\d+\/metrics \| grep -E '\^\(meshward_ca_sign_requests_total\|.*# CA/);
  // The agents' renewals, seen at the CA: Sign calls made with the current certificate.
  assert.match(run.stdout, /^ +meshward_ca_sign_requests_total\{method="mtls",result="issued",code="OK"\} [1-9]\d*$/m);
});

test('no process the demo started is left behind', () => {
  assert.deepEqual(processGroupMembers(run.pgid), [], 'the process group of the demo is empty');
  const pids = [...run.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 3, `the demo names the CA server and both sidecars it stopped:\n${run.stdout}`);
  for (const pid of pids) {
    // A PID can be reused by an unrelated process; only a meshward process under that PID is a leftover.
    const cmdline = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
    assert.doesNotMatch(cmdline, /meshward/, `pid ${pid} is still running: ${cmdline}`);
  }
});

test('what the demo writes under certs/demo is ignored by git (keys are never committed)', (t) => {
  if (spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).stdout.trim() !== 'true') {
    t.skip('not a git work tree');
    return;
  }
  const written = filesUnder(outDir).map((f) => join('certs', 'demo', relative(outDir, f)));
  assert.ok(written.some((f) => f.endsWith('root.key')) && written.some((f) => f.endsWith('tls.key')), written.join('\n'));
  // check-ignore prints the ignored paths among those given; every one must be listed.
  const r = spawnSync('git', ['-C', REPO_ROOT, 'check-ignore', '--stdin'], { input: written.join('\n'), encoding: 'utf8' });
  const ignored = new Set(r.stdout.split('\n').filter(Boolean));
  assert.deepEqual(written.filter((f) => !ignored.has(f)), [], 'files the demo writes that git would not ignore');
  // ...while the folder's README stays tracked.
  assert.equal(execFileSync('git', ['-C', REPO_ROOT, 'ls-files', 'certs/README.md'], { encoding: 'utf8' }).trim(), 'certs/README.md');
});
