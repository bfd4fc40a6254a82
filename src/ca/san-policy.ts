// Which DNS names and IP addresses a workload may put in its own certificate (config.yaml's
// `allowedDnsNames` and `allowedIpAddresses`; docs/ca-operations.md, "Names a workload may ask for").
// A SPIFFE ID proves who a workload is; the DNS and IP SANs say which host names a client may reach it
// by. Without a rule, any workload holding a token or a certificate could ask for `payments.prod.svc`
// and serve TLS as that host, which is how step-ca's and Vault's SAN policies came to be. Templates are
// filled from the caller's SPIFFE ID: `{{trustDomain}}`, and `{{KEY}}` for every `/KEY/VALUE` pair of its
// path (`spiffe://td/ns/shop/sa/orders` gives `{{ns}}` = shop and `{{sa}}` = orders, Kubernetes' layout).
// A pattern is an exact name, `*.rest` (one label before rest) or `**.rest` (one or more labels).
// Pure: the authority hands in the ID and the names; nothing here reads files.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** What a CA with no `allowedDnsNames` allows: the Kubernetes service names of the workload's own service account. */
export const DEFAULT_ALLOWED_DNS_NAMES: readonly string[] = ['{{sa}}.{{ns}}.svc', '{{sa}}.{{ns}}.svc.cluster.local'];

const VARIABLE = /\{\{([A-Za-z][A-Za-z0-9_-]*)\}\}/g;
/** A value fit to stand in a DNS name: lowercase labels (the trust domain has dots; a path segment rarely does). */
const DNS_LABELS = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export class SanPolicy {
  private readonly ipBlocks = new BlockList();

  private constructor(readonly dnsTemplates: readonly string[], readonly ipRanges: readonly string[]) {
    for (const range of ipRanges) {
      const { address, prefix, family } = parseRange(range);
      this.ipBlocks.addSubnet(address, prefix, family);
    }
  }

  /** Checks the templates and ranges; throws an Error whose message names the entry (the config loader adds the file and field). */
  static compile(dnsTemplates: readonly string[], ipRanges: readonly string[]): SanPolicy {
    dnsTemplates.forEach((t) => checkTemplate(t));
    ipRanges.forEach((r) => parseRange(r));
    return new SanPolicy([...dnsTemplates], [...ipRanges]);
  }

  /** The first name the policy does not allow for this SPIFFE ID, with why, or undefined when every name is allowed. */
  refusal(spiffeId: string, dns: readonly string[], ips: readonly string[]): string | undefined {
    const variables = variablesOf(spiffeId);
    const patterns = this.dnsTemplates.map((t) => fill(t, variables)).filter((p): p is string => p !== undefined);
    for (const name of dns) {
      if (!patterns.some((p) => dnsMatches(p, name))) {
        const allowed = patterns.length > 0 ? `allowed for it: ${patterns.join(', ')}` : 'no DNS name is allowed for it';
        return `DNS name ${name} is not allowed for ${spiffeId} by the CA's allowedDnsNames (${allowed})`;
      }
    }
    for (const ip of ips) {
      if (!this.ipBlocks.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')) {
        const allowed = this.ipRanges.length > 0 ? `allowed: ${this.ipRanges.join(', ')}` : 'no IP address is allowed';
        return `IP address ${ip} is not allowed by the CA's allowedIpAddresses (${allowed})`;
      }
    }
    return undefined;
  }
}

/** `{{trustDomain}}` and every /KEY/VALUE pair of the path (an odd last segment is no pair). */
function variablesOf(spiffeId: string): Map<string, string> {
  const rest = spiffeId.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const vars = new Map<string, string>([['trustDomain', slash < 0 ? rest : rest.slice(0, slash)]]);
  const segments = slash < 0 ? [] : rest.slice(slash + 1).split('/');
  for (let i = 0; i + 1 < segments.length; i += 2) vars.set(segments[i]!, segments[i + 1]!);
  return vars;
}

/** The pattern for these variables, or undefined when the ID lacks one of them or a value is no DNS label. */
function fill(template: string, vars: Map<string, string>): string | undefined {
  let missing = false;
  const filled = template.replace(VARIABLE, (_m, key: string) => {
    const value = vars.get(key);
    if (value === undefined || !DNS_LABELS.test(value)) missing = true;
    return value ?? '';
  });
  return missing ? undefined : filled;
}

function dnsMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('**.')) return name.endsWith(pattern.slice(2)) && name.length > pattern.length - 2;
  if (pattern.startsWith('*.')) {
    const rest = pattern.slice(1);
    return name.endsWith(rest) && name.length > rest.length && !name.slice(0, -rest.length).includes('.');
  }
  return name === pattern;
}

/** A template is a DNS name once its variables are replaced by a label, with an optional leading `*.` or `**.`. */
function checkTemplate(template: string): void {
  if (typeof template !== 'string' || template === '') throw new Error('must be a DNS name pattern such as {{sa}}.{{ns}}.svc or *.example.org');
  const leftover = template.replace(VARIABLE, 'x');
  if (/[{}]/.test(leftover)) throw new Error(`"${template}" has a malformed variable: write {{name}}, e.g. {{ns}}`);
  const body = leftover.startsWith('**.') ? leftover.slice(3) : leftover.startsWith('*.') ? leftover.slice(2) : leftover;
  if (body.includes('*')) throw new Error(`"${template}": a wildcard is allowed only as the first label (*. or **.)`);
  if (body !== body.toLowerCase()) throw new Error(`"${template}" must be lowercase`);
  if (body.length > 253 || !DNS_LABELS.test(body)) {
    throw new Error(`"${template}" is not a DNS name pattern: lowercase letters, digits and '-' in dot-separated labels, {{variables}}, and a leading *. or **.`);
  }
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (a /32 or /128). */
function parseRange(range: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText, extra] = String(range).split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (family === undefined || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    throw new Error(`"${range}" is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8`);
  }
  return { address, prefix, family };
}
