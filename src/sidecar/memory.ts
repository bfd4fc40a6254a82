// The sidecar's own V8 settings for resident memory. V8's young generation (new space) starts at 1 MB
// per semi-space and doubles, up to 16 MB, whenever many objects survive a scavenge: a burst of
// handshakes or a second of load grows it, and V8 gives the pages back only when its memory reducer
// notices the process is idle, tens of seconds to minutes later. A proxy's objects are short-lived
// (a request's, a connection's), so a small young generation costs it little: measured with the
// keep-alive load of bench/proxy.sh, see docs/configuration.md ("Memory").
import v8 from 'node:v8';

/** Flags the operator may set themselves (NODE_OPTIONS or node's command line): theirs win. */
const YOUNG_GENERATION_FLAGS = /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;

/**
 * Keeps the young generation at its starting size unless the operator chose a size: the growth
 * factor is read by V8 each time it considers growing (unlike --max-semi-space-size, which only
 * counts at start-up), so it can be set by the running process.
 * Returns whether the setting was applied.
 */
export function keepYoungGenerationSmall(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (execArgv.some((a) => YOUNG_GENERATION_FLAGS.test(a)) || YOUNG_GENERATION_FLAGS.test(nodeOptions)) return false;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
