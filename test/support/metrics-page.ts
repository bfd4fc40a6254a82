// Checks that docs/metrics.md covers what a real /metrics exports: the families, label names and label
// values of a Prometheus text scrape, compared with the page's section for each series. Used by the
// sidecar's and the CA's docs tests.
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export const METRICS_PAGE = join(REPO_ROOT, 'docs', 'metrics.md');

/**
 * Labels whose values depend on the deployment (a caller's SPIFFE ID, a rule index, a worker number):
 * the page describes their form, not every value. Every other label's values are a fixed set the page lists.
 */
export const OPEN_LABELS = new Set(['identity', 'route', 'worker']);

/** Families (`# TYPE name kind`) and, per family, label name → values seen in its samples. */
export function parseExposition(text: string): Map<string, Map<string, Set<string>>> {
  const families = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (meshward_\w+) \w+$/.exec(line);
    if (type) families.set(type[1]!, new Map());
  }
  for (const line of text.split('\n')) {
    const sample = /^(meshward_\w+?)(?:_bucket|_sum|_count)?(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    // A histogram's samples carry the family name plus a suffix; a counter's name is its family name.
    const family = families.has(sample[1]!) ? sample[1]! : line.split(/[{ ]/)[0]!;
    const labels = families.get(family);
    if (labels === undefined) continue;
    for (const pair of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (pair[1] === 'le') continue; // histogram bucket bound, not a label of the series
      let values = labels.get(pair[1]!);
      if (values === undefined) labels.set(pair[1]!, (values = new Set()));
      values.add(pair[2]!);
    }
  }
  return families;
}

/** The text of the page's section whose heading names `family` in backticks, up to the next heading of its level or above. */
function sectionFor(page: string, family: string): string | undefined {
  const lines = page.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && l.includes(`\`${family}\``));
  if (start < 0) return undefined;
  const level = /^#+/.exec(lines[start]!)![0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#{1,6} /.test(lines[end]!) && /^#+/.exec(lines[end]!)![0].length <= level)) end++;
  return lines.slice(start, end).join('\n');
}

/** What the page fails to say about the scraped families, one sentence per omission. */
export function omissions(page: string, scraped: Map<string, Map<string, Set<string>>>): string[] {
  const missing: string[] = [];
  for (const [family, labels] of scraped) {
    const section = sectionFor(page, family);
    if (section === undefined) {
      missing.push(`series ${family} has no section (a heading naming \`${family}\`)`);
      continue;
    }
    for (const [label, values] of labels) {
      if (!section.includes(`\`${label}\``)) missing.push(`${family}: label \`${label}\` is not described`);
      if (OPEN_LABELS.has(label)) continue;
      for (const value of values) {
        if (!section.includes(`\`${value}\``)) missing.push(`${family}{${label}="${value}"}: the value \`${value}\` is not listed`);
      }
    }
  }
  return missing;
}

