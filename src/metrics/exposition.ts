// Prometheus text exposition format 0.0.4 (what every Prometheus scrapes), written from snapshots.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
import type { Labels, MetricSnapshot } from './snapshot.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** HELP text: backslash and line feed are escaped (a raw newline would end the line). */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: backslash, double quote and line feed are escaped, nothing else. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value or `le` bound as Prometheus writes it: Go's float syntax, with +Inf/-Inf/NaN spelled out. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  let out = '';
  for (const k in labels) out += `${out === '' ? '' : ','}${k}="${escapeLabelValue(labels[k]!)}"`;
  if (extra !== undefined) out += `${out === '' ? '' : ','}${extra[0]}="${extra[1]}"`;
  return out === '' ? '' : `{${out}}`;
}

/** The whole exposition: per metric its HELP and TYPE lines, then its samples; a final newline. */
export function exposition(metrics: readonly MetricSnapshot[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    if (m.type !== 'histogram') {
      for (const s of m.series) lines.push(`${m.name}${labelText(s.labels)} ${formatNumber(s.value)}`);
      continue;
    }
    const bounds = m.buckets ?? [];
    for (const s of m.series) {
      const counts = s.counts ?? [];
      for (let i = 0; i < bounds.length; i++) lines.push(`${m.name}_bucket${labelText(s.labels, ['le', formatNumber(bounds[i]!)])} ${counts[i] ?? 0}`);
      const count = counts[bounds.length] ?? 0;
      lines.push(
        `${m.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${count}`,
        `${m.name}_sum${labelText(s.labels)} ${formatNumber(s.value)}`,
        `${m.name}_count${labelText(s.labels)} ${count}`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}
