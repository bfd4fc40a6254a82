// The metric names a PromQL expression reads, for checking dashboards and alert rules against a real
// /metrics. Not a PromQL parser: it removes what cannot be a metric name (string literals, label
// matchers, range and subquery brackets, the label lists of by/without/on/ignoring/group_*), then keeps
// each remaining identifier that is not called as a function, not a keyword and not a number's unit.
// Grafana's `label_values(EXPR, label)` variable queries are reduced to EXPR.
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan', 'atan2']);

export function metricNames(expr: string): string[] {
  let e = expr.trim();
  const variable = /^label_values\((.*),\s*[a-zA-Z_]\w*\s*\)$/s.exec(e);
  if (variable) e = variable[1]!;
  e = e
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*(?!\w)/g)) {
    const rest = e.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation: sum(...), rate(...)
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** The metric families a Prometheus text exposition declares (`# TYPE name type`), with their type. */
export function exportedFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) families.set(m[1]!, m[2]!);
  return families;
}

/** The family a sample name belongs to: a histogram's `_bucket`, `_sum` and `_count` series name their family. */
export function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name)) return name;
  const h = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (h && (families.get(h[1]!) === 'histogram' || families.get(h[1]!) === 'summary')) return h[1];
  return undefined;
}
