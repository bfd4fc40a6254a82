// A paced keep-alive client for the added-latency case: sends requests at a fixed rate (1000 req/s) on a
// pool of keep-alive connections and records each request's latency, from the write of the request to
// the last byte of the response. wrk2 is not packaged in Debian and wrk's Lua `delay()` cannot hold an
// exact rate, so this client keeps a schedule: every millisecond tick it sends the requests that are due
// (requests_due = elapsed × rate), so the rate holds even when a response is slow. It speaks HTTP/1.1 on
// raw net/tls sockets (one write per request, a minimal response parser) because node:http's client
// costs several times more CPU per request on the shared client core than the proxies' own work.
// The same client, with the same code path except TLS, measures the direct case, which is subtracted.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export interface PacedOptions {
  port: number;
  path: string;
  rate: number;                    // requests per second
  seconds: number;                 // measured
  warmupSeconds: number;           // sent at the same rate, not recorded
  tls?: { crt: string; key: string };
  maxConnections?: number;         // pool size (default 64)
}

export interface PacedResult {
  recorded: number;
  errors: number;
  connections: number;
  achievedRate: number;
  p50Us: number;
  p99Us: number;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Where a complete HTTP/1.1 response ends in buf (-1: not yet). Handles Content-Length and chunked bodies. */
export function responseEnd(buf: string): { end: number; status: number } | undefined {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = buf.slice(0, headEnd).toLowerCase();
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? { end, status } : undefined;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
    const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    return last >= 0 ? { end: last + 7, status } : undefined;
  }
  return { end: bodyStart, status }; // no body (204/304) or one we do not expect here
}

interface PooledConnection {
  socket: net.Socket;
  ready: boolean;
  busy: boolean;
  buffer: string;
  onResponse?: (status: number) => void;
}

export async function pacedLatency(o: PacedOptions): Promise<PacedResult> {
  const tlsOpts = o.tls ? { cert: fs.readFileSync(o.tls.crt), key: fs.readFileSync(o.tls.key) } : undefined;
  const request = Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 'latin1');
  const maxConnections = o.maxConnections ?? 64;
  const pool: PooledConnection[] = [];
  const waiting: ((c: PooledConnection | undefined) => void)[] = [];
  let opened = 0;

  const release = (c: PooledConnection) => {
    c.busy = false;
    const next = waiting.shift();
    if (next) {
      c.busy = true;
      next(c);
    }
  };
  const open = () => {
    opened++;
    const socket = tlsOpts
      ? tls.connect({ host: '127.0.0.1', port: o.port, ...tlsOpts, rejectUnauthorized: false, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port: o.port });
    socket.setNoDelay(true);
    const c: PooledConnection = { socket, ready: false, busy: true, buffer: '' };
    pool.push(c);
    socket.once(tlsOpts ? 'secureConnect' : 'connect', () => {
      c.ready = true;
      release(c);
    });
    socket.on('data', (chunk: Buffer) => {
      c.buffer += chunk.toString('latin1');
      const r = responseEnd(c.buffer);
      if (!r) return;
      c.buffer = c.buffer.slice(r.end);
      const cb = c.onResponse;
      c.onResponse = undefined;
      cb?.(r.status);
    });
    const gone = () => {
      const i = pool.indexOf(c);
      if (i < 0) return; // 'error' and 'close' both come
      pool.splice(i, 1);
      const cb = c.onResponse;
      c.onResponse = undefined;
      cb?.(0);
      // A connection that never came up fails the request waiting for it instead of leaving it waiting.
      if (!c.ready) waiting.shift()?.(undefined);
    };
    socket.on('error', gone);
    socket.on('close', gone);
  };
  const acquire = (): Promise<PooledConnection | undefined> => {
    const idle = pool.find((c) => c.ready && !c.busy && !c.socket.destroyed);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    // Open a connection only when those already opening will not cover this request.
    const connecting = pool.filter((c) => !c.ready).length;
    if (connecting <= waiting.length && pool.length < maxConnections) open();
    return new Promise((resolve) => waiting.push(resolve));
  };

  const warmupCount = Math.round(o.rate * o.warmupSeconds);
  const total = warmupCount + Math.round(o.rate * o.seconds);
  const latencies = new Float64Array(total - warmupCount);
  let recorded = 0;
  let errors = 0;
  let sent = 0;
  let done = 0;
  let measureStart = 0;
  let measureEnd = 0;

  await new Promise<void>((resolve) => {
    // Bounded even if the server stops answering: unanswered requests count as errors.
    const deadline = setTimeout(() => {
      errors += total - done;
      resolve();
    }, (o.seconds + o.warmupSeconds + 15) * 1000);
    const finish = () => {
      if (++done === total) {
        clearTimeout(deadline);
        resolve();
      }
    };
    const fire = async (i: number) => {
      if (i === warmupCount) measureStart = performance.now();
      const c = await acquire();
      if (!c) {
        errors++;
        finish();
        return;
      }
      const t0 = process.hrtime.bigint();
      const timer = setTimeout(() => c.socket.destroy(), 5000);
      c.onResponse = (status) => {
        clearTimeout(timer);
        const us = Number(process.hrtime.bigint() - t0) / 1000;
        if (status !== 200) errors++;
        else if (i >= warmupCount) latencies[recorded++] = us;
        if (status === 0) {
          // the connection died: whoever waits for one gets a fresh one
          if (waiting.length > 0 && pool.length < maxConnections) open();
        } else {
          release(c);
        }
        finish();
      };
      c.socket.write(request);
    };
    const started = performance.now();
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) * o.rate) / 1000) + 1);
      while (sent < due) void fire(sent++);
      if (sent < total) setTimeout(tick, 1);
      else measureEnd = performance.now();
    };
    tick();
  });
  for (const c of pool) c.socket.destroy();
  const sorted = latencies.slice(0, recorded).sort();
  const measuredMs = Math.max(1, measureEnd - measureStart);
  return {
    recorded,
    errors,
    connections: opened,
    achievedRate: ((total - warmupCount) * 1000) / measuredMs,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
  };
}
