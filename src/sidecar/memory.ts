// The sidecar's own V8 settings for resident memory. V8's young generation (new space) starts at 1 MB
// per semi-space and doubles, up to 16 MB (32 MB of new space), whenever many objects survive a
// scavenge: a burst of handshakes or a second of load grows it, and V8 gives the pages back only when
// its memory reducer notices the process is idle, tens of seconds to minutes later. Kept at 1 MB it
// measured 10-25 % more CPU per keep-alive request on this (loaded) machine in 4 of 4 alternating runs,
// so growth is allowed up to YOUNG_GENERATION_CAP and stopped there. See docs/configuration.md ("Memory").
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Flags the operator may set themselves (NODE_OPTIONS or node's command line): theirs win. */
const YOUNG_GENERATION_FLAGS = /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;

/** New space (both semi-spaces) the sidecar lets V8 grow to: 4 MB per semi-space. */
export const YOUNG_GENERATION_CAP = 8 * 1024 * 1024;
/**
 * Growth stops once new space is half the cap: gc entries reach the observer in batches, after the
 * collections, so V8 may double it once more before the factor drops (measured: a stop at the cap
 * itself ended at twice the cap). Either way it ends at the cap or under it.
 */
const STOP_AT = YOUNG_GENERATION_CAP / 2;

/** V8's own growth factor, restored while the young generation is under the cap. */
const V8_GROWTH_FACTOR = 2;

function newSpaceSize(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

let observer: PerformanceObserver | undefined;

/**
 * Stops the young generation growing past YOUNG_GENERATION_CAP unless the operator sized it. V8 reads
 * --semi-space-growth-factor each time it considers growing (unlike --max-semi-space-size, which only
 * counts at start-up), so after each collection the factor is set to 1 near the cap and back to V8's 2
 * under it (after V8's memory reducer shrank it). Returns whether the cap applies.
 */
export function capYoungGeneration(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (execArgv.some((a) => YOUNG_GENERATION_FLAGS.test(a)) || YOUNG_GENERATION_FLAGS.test(nodeOptions)) return false;
  if (observer !== undefined) return true;
  let capped = false;
  const review = () => {
    const atCap = newSpaceSize() >= STOP_AT;
    if (atCap === capped) return;
    capped = atCap;
    v8.setFlagsFromString(`--semi-space-growth-factor=${atCap ? 1 : V8_GROWTH_FACTOR}`);
  };
  // Growth happens only in a collection: looking after each one is enough.
  observer = new PerformanceObserver(review);
  observer.observe({ entryTypes: ['gc'] });
  review();
  return true;
}
