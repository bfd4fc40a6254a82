// What logging every allowed request costs (issue 14 item 1), as CPU time of the sidecar process per
// keep-alive request: each build given runs twice, with the allowed-request line on (log.allowed: info,
// stdout to a file, as in production) and off (silent); all run at once and are measured in turns, round
// after round, so load from elsewhere on the machine falls on every variant alike. Wall-clock req/s
// mean nothing on a shared machine; CPU µs per request do.
//
//   node dist/bench/log-cost.js [label=path/to/bin/meshward.js ...]     (default: this build as "this")
//   LOGCOST_ROUNDS=7 LOGCOST_REQUESTS=6000 LOGCOST_CONNECTIONS=8 LOGCOST_PROFILE=label (--cpu-prof that build,
//   line on and off, into LOGCOST_PROFILE_DIR/label-line-on and .../label-line-off)
//
// The client is raw TLS (a request written, the response read by its Content-Length) and the app a
// fixed 2-byte answer, both in this process, so the sidecar is the only thing measured.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { spawn, type ChildProcess } from 'node:child_process';
import { FRONTEND_ID, clientTlsOptions, makeScenario } from '../test/support/sidecar.js';
import { freePort, listenOnLoopback } from '../test/support/ports.js';
import { MESHWARD_BIN } from '../test/support/cli.js';
import { stringify } from 'yaml';

const ROUNDS = Number(process.env.LOGCOST_ROUNDS ?? 7);
const REQUESTS = Number(process.env.LOGCOST_REQUESTS ?? 6000);
const CONNECTIONS = Number(process.env.LOGCOST_CONNECTIONS ?? 8);
const PROFILE = process.env.LOGCOST_PROFILE;

interface Variant {
  name: string;
  child: ChildProcess;
  port: number;
  perRequestUs: number[];
}

/** CPU time of every thread of the process so far, in µs (the scheduler's nanosecond count, not 10 ms ticks). */
function cpuMicros(pid: number): number {
  let ns = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended in between: its time is lost to both readings alike
    }
  }
  return ns / 1000;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** `count` keep-alive GETs on each of `connections` raw TLS connections. */
async function load(opts: tls.ConnectionOptions, connections: number, count: number): Promise<void> {
  const one = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect(opts);
      let left = n;
      let buf = '';
      const send = () => socket.write(`GET /orders/${left} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: log-cost\r\n\r\n`);
      socket.setEncoding('latin1');
      socket.once('secureConnect', send);
      socket.on('data', (d: string) => {
        buf += d;
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, end));
        const total = end + 4 + Number(m?.[1] ?? 0);
        if (buf.length < total) return;
        if (!buf.startsWith('HTTP/1.1 200')) return reject(new Error(`unexpected answer: ${buf.slice(0, 200)}`));
        buf = buf.slice(total);
        if (--left === 0) {
          socket.end();
          resolve();
        } else send();
      });
      socket.on('error', reject);
    });
  await Promise.all(Array.from({ length: connections }, () => one(Math.ceil(count / connections))));
}

async function main(): Promise<void> {
  const builds = process.argv.slice(2).map((a) => a.split('=') as [string, string]);
  if (builds.length === 0) builds.push(['this', MESHWARD_BIN]);
  const app = http.createServer((_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'));
  const appPort = await listenOnLoopback(app);
  const s = makeScenario({ app: `http://127.0.0.1:${appPort}` });
  const client = s.pki.leaf({ spiffeId: FRONTEND_ID });
  const variants: Variant[] = [];
  try {
    for (const [label, bin] of builds) {
      for (const allowed of ['info', 'silent'] as const) {
        const name = `${label} line ${allowed === 'info' ? 'on' : 'off'}`;
        const port = await freePort();
        const config = path.join(s.tmp, `${label}-${allowed}.yaml`);
        fs.writeFileSync(config, stringify({
          identity: { dir: './identity' }, inbound: { listen: `127.0.0.1:${port}`, app: `http://127.0.0.1:${appPort}` },
          policy: './policy.yaml', admin: { listen: '127.0.0.1:0' }, log: { level: 'info', allowed },
        }));
        const out = fs.openSync(path.join(s.tmp, `${label}-${allowed}.log`), 'w');
        // Both variants of the label, each in its own directory: the line's cost is the difference of the two.
        const profDir = path.join(process.env.LOGCOST_PROFILE_DIR ?? s.tmp, `${label}-line-${allowed === 'info' ? 'on' : 'off'}`);
        const prof = PROFILE === label ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
        const child = spawn(process.execPath, [...prof, path.resolve(bin), 'sidecar', '--config', config], { stdio: ['ignore', out, 'inherit'] });
        variants.push({ name, child, port, perRequestUs: [] });
      }
    }
    for (const v of variants) {
      // Up once a request goes through; then warmed up (JIT) before anything is counted.
      for (let i = 0; ; i++) {
        try {
          await load(clientTlsOptions(s.pki, client, v.port), 1, 1);
          break;
        } catch (err) {
          if (i > 200 || v.child.exitCode !== null) throw new Error(`${v.name} did not start: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await load(clientTlsOptions(s.pki, client, v.port), CONNECTIONS, 2000);
    }
    for (let r = 0; r < ROUNDS; r++) {
      // A different order each round, so no variant always runs first (or after the same neighbour).
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      for (const v of order) {
        const before = cpuMicros(v.child.pid!);
        await load(clientTlsOptions(s.pki, client, v.port), CONNECTIONS, REQUESTS);
        const us = (cpuMicros(v.child.pid!) - before) / REQUESTS;
        v.perRequestUs.push(us);
      }
      process.stderr.write(`round ${r + 1}: ${variants.map((v) => `${v.name} ${v.perRequestUs.at(-1)!.toFixed(1)}`).join(', ')}\n`);
    }
    console.log(`CPU µs per keep-alive request through the sidecar (median of ${ROUNDS} interleaved rounds of ${REQUESTS} requests on ${CONNECTIONS} connections):`);
    for (let i = 0; i < variants.length; i += 2) {
      const on = median(variants[i]!.perRequestUs);
      const off = median(variants[i + 1]!.perRequestUs);
      console.log(`  ${builds[i / 2]![0]}: line on ${on.toFixed(1)} µs, off ${off.toFixed(1)} µs, the line costs ${(on - off).toFixed(1)} µs; on/off throughput at equal CPU ${(off / on).toFixed(2)}×`);
    }
  } finally {
    for (const v of variants) v.child.kill('SIGTERM');
    await Promise.all(variants.map((v) => new Promise((r) => (v.child.exitCode !== null ? r(undefined) : v.child.once('exit', r)))));
    app.close();
    if (PROFILE === undefined) s.cleanup();
    else console.log(`profiles and logs in ${s.tmp}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
