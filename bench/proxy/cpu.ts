// How busy each core was between two readings of /proc/stat: shows whether the client core (wrk and the
// backend) rather than the proxy was the bottleneck of a run.
import fs from 'node:fs';

export type CoreTimes = Map<string, { busy: number; total: number }>;

export function readCoreTimes(): CoreTimes {
  const out: CoreTimes = new Map();
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal ...
    const f = m[2]!.trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    out.set(m[1]!, { busy: total - f[3]! - f[4]!, total });
  }
  return out;
}

/** Percent busy of one core ("cpu0", "cpu1") between two readings. */
export function busyPercent(before: CoreTimes, after: CoreTimes, core: string): number {
  const a = before.get(core);
  const b = after.get(core);
  if (!a || !b || b.total === a.total) return 0;
  return (100 * (b.busy - a.busy)) / (b.total - a.total);
}
