// Polling with one signature for every test: `await waitFor(what, check, { timeoutMs })` calls `check`
// until it returns something other than undefined or false and resolves with that value. The machine
// running the tests is slow and shared, so the default wait is generous; never assert on how long it took.

export interface WaitOptions {
  /** How long to keep trying (default 30 s). */
  timeoutMs?: number;
  /** Pause between two checks (default 100 ms). */
  intervalMs?: number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Calls `check` every intervalMs until it returns a value other than undefined or false, and resolves with
 * it. A check that throws counts as "not yet" (its last error is named in the timeout's message), so a
 * check can also throw to say why it is not there yet.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await sleep(intervalMs);
  }
}
