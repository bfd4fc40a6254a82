// Runs wrk on the client core and reads its figures from the JSON line report.lua prints. For mTLS
// targets wrk runs with the LD_PRELOAD library (bench/preload/clientcert.c) that gives every SSL_CTX
// the client certificate and, for handshake runs, turns session resumption off.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export interface WrkResult {
  requests: number;
  duration_us: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  status_errors: number;   // responses that were not 2xx/3xx
  timeouts: number;
  p50_us: number;
  p99_us: number;
  mean_us: number;
  max_us: number;
}

export interface WrkOptions {
  url: string;
  connections: number;
  seconds: number;
  core: number | string;          // taskset -c: one core, or a list (ALL_CORES)
  threads?: number;               // wrk -t (1 unless given)
  script: string;                 // report.lua
  headers?: string[];             // e.g. "Connection: close"
  clientCert?: { crt: string; key: string; preload: string };
  noResume?: boolean;
}

export function requestsPerSecond(r: WrkResult): number {
  return r.requests / (r.duration_us / 1e6);
}

export function failures(r: WrkResult): number {
  return r.connect_errors + r.read_errors + r.write_errors + r.status_errors + r.timeouts;
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-c', String(o.core), 'wrk', `-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', o.script];
  for (const h of o.headers ?? []) args.push('-H', h);
  args.push(o.url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (o.clientCert) {
    if (!fs.existsSync(o.clientCert.preload)) throw new Error(`${o.clientCert.preload} is missing: run bench/proxy.sh, which builds it`);
    env.LD_PRELOAD = o.clientCert.preload;
    env.MESHWARD_BENCH_CERT = o.clientCert.crt;
    env.MESHWARD_BENCH_KEY = o.clientCert.key;
  }
  env.MESHWARD_BENCH_NO_RESUME = o.noResume ? '1' : '0';
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 20) * 1000);
    child.on('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearTimeout(killer);
      const line = out.split('\n').find((l) => l.startsWith('WRK_RESULT '));
      if (!line) {
        reject(new Error(`wrk ${o.url} exited ${code} without a result: ${out.trim().split('\n').slice(-3).join(' | ')}`));
        return;
      }
      resolve(JSON.parse(line.slice('WRK_RESULT '.length)) as WrkResult);
    });
  });
}
