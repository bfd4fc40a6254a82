// The checks every issuance request passes before anything is signed or written: the identity (a valid
// SPIFFE ID, in this CA's trust domain, allowed by config.yaml), DNS and IP SANs, subject fields and the
// lifetime. Pure functions of the request and the CA's settings.
import { isIP } from 'node:net';
import { MeshwardError, invalid } from '../errors.js';
import { formatDuration } from '../duration.js';
import { compileSpiffePattern, parseSpiffeId } from '../pki/spiffe.js';
import type { CaConfig } from './config.js';

/** The compiled form of config.yaml's rules, built once per Authority. */
export class IssuanceRules {
  private readonly allowed: ((id: string) => boolean)[];

  constructor(readonly config: CaConfig) {
    this.allowed = config.allowedSpiffeIds.map((p) => compileSpiffePattern(p));
  }

  /** A workload SPIFFE ID this CA may issue; throws a sentence saying which rule it breaks. */
  spiffeId(id: string): string {
    const parsed = parseSpiffeId(id);
    if (parsed.trustDomain !== this.config.trustDomain) {
      throw new MeshwardError('permission_denied', `SPIFFE ID ${id} is outside this CA's trust domain ${this.config.trustDomain}: use spiffe://${this.config.trustDomain}/...`);
    }
    if (parsed.path === '') {
      throw invalid(`SPIFFE ID ${id} names the trust domain itself: a workload ID needs a path, such as spiffe://${this.config.trustDomain}/ns/NS/sa/SA`);
    }
    if (!this.allowed.some((matches) => matches(id))) {
      throw new MeshwardError('permission_denied', `SPIFFE ID ${id} is not allowed by this CA (allowedSpiffeIds in config.yaml: ${this.config.allowedSpiffeIds.join(', ')})`);
    }
    return id;
  }

  /** The lifetime to issue: the default when none is asked for, never above maxTtl, always positive. */
  ttl(ttlMs: number | undefined): number {
    if (ttlMs === undefined) return this.config.defaultTtlMs;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw invalid(`TTL must be positive (got ${Number.isFinite(ttlMs) ? formatDuration(ttlMs) : String(ttlMs)}): use a duration such as 1h`);
    if (ttlMs > this.config.maxTtlMs) {
      throw invalid(`TTL ${formatDuration(ttlMs)} is above this CA's maximum of ${formatDuration(this.config.maxTtlMs)} (maxTtl in config.yaml): ask for less`);
    }
    return ttlMs;
  }
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** DNS SANs: lowercase hostnames (RFC 1123), an optional leading `*.` wildcard label, at most 253 bytes. */
export function checkDnsNames(names: readonly string[]): string[] {
  return names.map((raw) => {
    const name = String(raw).toLowerCase();
    const labels = (name.startsWith('*.') ? name.slice(2) : name).split('.');
    if (name.length === 0 || name.length > 253 || !labels.every((l) => LABEL.test(l))) {
      throw invalid(`DNS name "${String(raw).slice(0, 80)}" is not a valid hostname: use letters, digits and '-' in dot-separated labels (a leading *. is allowed)`);
    }
    return name;
  });
}

export function checkIpAddresses(ips: readonly string[]): string[] {
  return ips.map((ip) => {
    if (isIP(String(ip)) === 0) throw invalid(`"${String(ip).slice(0, 80)}" is not an IPv4 or IPv6 address`);
    return String(ip);
  });
}

/** Subject fields: 1 to 64 characters each (X.520 upper bounds for CN and OU). */
export function checkSubjectField(value: string, what: string): string {
  if (value.length === 0 || value.length > 64) throw invalid(`${what} must be 1 to 64 characters long (got ${value.length})`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalid(`${what} must not contain control characters`);
  return value;
}
