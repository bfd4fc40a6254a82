// Go-style durations ("90s", "15m", "1h30m", "8760h", "250ms"), the unit users of step-ca and Kubernetes know,
// and the one way a moment is written in messages and CLI output.
import { invalid } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Parses a duration into milliseconds; throws an invalid_argument error naming `what` on bad input. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = String(text).trim();
  if (s === '') throw invalid(`${what} is empty: use a duration such as 90s, 15m or 1h`);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const start = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== start) {
      throw invalid(`${what} "${s}" is not a duration: use a number and a unit (ms, s, m, h, d), e.g. 90s, 15m, 1h`);
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  if (!Number.isFinite(total)) throw invalid(`${what} "${s}" is too large`);
  return Math.round(total);
}

/** Formats milliseconds the way parseDuration reads them, largest units first ("1h30m", "45s"). */
export function formatDuration(ms: number): string {
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.floor(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}

/** A moment as messages and CLI output write it: UTC, whole seconds ("2026-11-28T03:21:00Z"). */
export function formatTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
