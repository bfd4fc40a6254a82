// What one run of the proxy benchmark measures: which parts (BENCH_CASES) and which extra meshward
// builds (BENCH_MESHWARD_VARIANTS), read from the environment. Variants exist to record the effect of a
// change (issue 6: "Record the effect of each change"): each is another meshward bin, optionally run by
// another node binary, measured beside the current build and the same baselines in the same rounds.
import path from 'node:path';

/** The parts of a run, in the order they run. */
export const BENCH_CASES = ['keepalive', 'logging', '2workers', 'handshakes', 'paced', 'idle', 'rotations'] as const;
export type BenchCase = (typeof BENCH_CASES)[number];

/** The parts a variant is measured in: the others compare meshward with nginx and HAProxy only. */
export const VARIANT_CASES: readonly BenchCase[] = ['keepalive', 'handshakes'];

/**
 * BENCH_CASES="keepalive,handshakes" (comma- or space-separated; default and "all": every part).
 * An unknown name is an error rather than a silently shorter run.
 */
export function parseCases(value: string | undefined): BenchCase[] {
  if (value === undefined || value.trim() === '' || value.trim() === 'all') return [...BENCH_CASES];
  const names = value.split(/[\s,]+/).filter((n) => n !== '');
  for (const n of names) {
    if (!(BENCH_CASES as readonly string[]).includes(n)) {
      throw new Error(`BENCH_CASES: unknown part ${JSON.stringify(n)} (known: ${BENCH_CASES.join(', ')}, or all)`);
    }
  }
  // Run in the usual order whatever order they were named in.
  return BENCH_CASES.filter((c) => names.includes(c));
}

/** Another meshward build measured beside the main one. */
export interface MeshwardVariant {
  /** Free text shown in the column header "meshward (label)". */
  label: string;
  /** The label reduced to what is safe in a file name (its config, identity and log files). */
  fileTag: string;
  /** The meshward bin (bin/meshward.js of a build), absolute. */
  bin: string;
  /** The node binary that runs it ("node" from PATH unless given). */
  node: string;
}

/** At most this many variants: each takes 4 ports and a few seconds of every round. */
export const MAX_VARIANTS = 20;

/**
 * BENCH_MESHWARD_VARIANTS="label=BIN[,label=BIN...]", BIN being a meshward bin path, optionally
 * prefixed by a node binary and a colon: "node24=/path/to/node:/path/to/other/bin/meshward.js".
 * Labels may not hold ',' or '=' (the separators); they must be distinct.
 */
export function parseVariants(value: string | undefined, cwd = process.cwd()): MeshwardVariant[] {
  if (value === undefined || value.trim() === '') return [];
  const variants = value.split(',').map((s) => s.trim()).filter((s) => s !== '').map((entry) => parseVariant(entry, cwd));
  if (variants.length > MAX_VARIANTS) throw new Error(`BENCH_MESHWARD_VARIANTS: at most ${MAX_VARIANTS} variants, got ${variants.length}`);
  const seen = new Set<string>();
  for (const v of variants) {
    if (seen.has(v.fileTag)) throw new Error(`BENCH_MESHWARD_VARIANTS: two variants are labelled ${JSON.stringify(v.label)} (or the same in a file name)`);
    seen.add(v.fileTag);
  }
  return variants;
}

function parseVariant(entry: string, cwd: string): MeshwardVariant {
  const eq = entry.indexOf('=');
  if (eq <= 0 || eq === entry.length - 1) throw new Error(`BENCH_MESHWARD_VARIANTS: ${JSON.stringify(entry)} is not label=BIN`);
  const label = entry.slice(0, eq).trim();
  const spec = entry.slice(eq + 1).trim();
  // A path with a colon in it is rare enough: the first colon separates the node binary from the bin.
  const colon = spec.indexOf(':');
  const node = colon > 0 ? path.resolve(cwd, spec.slice(0, colon)) : 'node';
  const bin = path.resolve(cwd, colon > 0 ? spec.slice(colon + 1) : spec);
  const fileTag = label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  if (fileTag === '') throw new Error(`BENCH_MESHWARD_VARIANTS: the label of ${JSON.stringify(entry)} has no letter or digit`);
  return { label, fileTag, bin, node };
}
