// When the agent acts: renew at 2/3 of a certificate's lifetime (minus up to 10% of the lifetime of random
// jitter, so a fleet issued together does not renew together), and back off exponentially between failed
// attempts. Pure functions of their inputs: the clock and the random number are passed in.

export const RENEW_FRACTION = 2 / 3;
export const JITTER_FRACTION = 0.1;
export const BACKOFF_INITIAL_MS = 1000;
export const BACKOFF_MAX_MS = 60_000;

/** The moment to renew a certificate valid from notBefore to notAfter; `random` in [0, 1). */
export function renewalTime(notBefore: Date, notAfter: Date, random: number): Date {
  const lifetime = Math.max(0, notAfter.getTime() - notBefore.getTime());
  const at = notBefore.getTime() + lifetime * RENEW_FRACTION - lifetime * JITTER_FRACTION * random;
  return new Date(at);
}

/**
 * Delay before retry number `attempt` (1 for the first retry): 1 s doubling to 1 min, with "equal jitter"
 * (half fixed, half random) so retries after a CA outage spread out.
 */
export function backoffDelay(attempt: number, random: number, opts: { initialMs?: number; maxMs?: number } = {}): number {
  const initial = opts.initialMs ?? BACKOFF_INITIAL_MS;
  const max = opts.maxMs ?? BACKOFF_MAX_MS;
  const ceiling = Math.min(max, initial * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
