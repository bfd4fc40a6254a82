// config.yaml: defaults, and every mistake refused with a message that names the field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatCaConfig, parseCaConfig } from '../../src/ca/config.js';

function refusal(text: string): string {
  try {
    parseCaConfig(text, 'config.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`accepted: ${text}`);
}

describe('CA config.yaml', () => {
  it('fills in the documented defaults: 1h, 24h, ec-p256, the whole trust domain, the service account\'s own service names, no IP, CRLs valid 7 days', () => {
    const c = parseCaConfig('trustDomain: example.org\n', 'config.yaml');
    assert.deepEqual(c, {
      trustDomain: 'example.org', defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000, keyType: 'ec-p256', allowedSpiffeIds: ['spiffe://example.org/**'],
      allowedDnsNames: ['{{sa}}.{{ns}}.svc', '{{sa}}.{{ns}}.svc.cluster.local'], allowedIpAddresses: [], crlValidityMs: 7 * 86_400_000,
    });
  });

  it('reads back exactly what ca init writes', () => {
    const c = { trustDomain: 'prod.example', defaultTtlMs: 900_000, maxTtlMs: 7_200_000, keyType: 'ed25519' as const, allowedSpiffeIds: ['spiffe://prod.example/ns/*/sa/*'], allowedDnsNames: ['{{sa}}.{{ns}}.svc', '**.internal.prod.example'], allowedIpAddresses: ['10.0.0.0/8', 'fd00::1'], crlValidityMs: 3_600_000 };
    assert.deepEqual(parseCaConfig(formatCaConfig(c), 'config.yaml'), c);
  });

  const cases: [string, string, RegExp][] = [
    ['an unknown key (a typo)', 'trustDomain: example.org\nmaxTTL: 48h\n', /config\.yaml: maxTTL: unknown field \(did you mean "maxTtl"\?\); valid fields here: trustDomain, defaultTtl, maxTtl, keyType, allowedSpiffeIds, allowedDnsNames, allowedIpAddresses, store, crlValidity$/m],
    ['a missing trust domain', 'maxTtl: 1h\n', /config\.yaml: trustDomain: /],
    ['an uppercase trust domain', 'trustDomain: Example.org\n', /config\.yaml: trustDomain: .*lowercase/],
    ['a trust domain with a port', 'trustDomain: "example.org:443"\n', /config\.yaml: trustDomain: .*port/],
    ['a duration without a unit', 'trustDomain: example.org\ndefaultTtl: "60"\n', /config\.yaml: defaultTtl: /],
    ['a zero max TTL', 'trustDomain: example.org\nmaxTtl: 0s\n', /config\.yaml: maxTtl: must be positive/],
    ['a default above the max', 'trustDomain: example.org\ndefaultTtl: 2h\nmaxTtl: 1h\n', /config\.yaml: defaultTtl: 2h is above maxTtl 1h/],
    ['an unknown key type', 'trustDomain: example.org\nkeyType: rsa-1024\n', /config\.yaml: keyType: must be one of/],
    ['a pattern of another trust domain', 'trustDomain: example.org\nallowedSpiffeIds: ["spiffe://other.org/**"]\n', /config\.yaml: allowedSpiffeIds\[0\]: .*outside the trust domain/],
    ['a malformed pattern', 'trustDomain: example.org\nallowedSpiffeIds: ["spiffe://example.org/**/x"]\n', /config\.yaml: allowedSpiffeIds\[0\]: /],
    ['a list that is a string', 'trustDomain: example.org\nallowedSpiffeIds: spiffe://example.org/**\n', /config\.yaml: allowedSpiffeIds: /],
    ['a CRL validity below 10 s', 'trustDomain: example.org\ncrlValidity: 5s\n', /config\.yaml: crlValidity: 5s is too short: use at least 10s/],
    ['a CRL validity that is no duration', 'trustDomain: example.org\ncrlValidity: soon\n', /config\.yaml: crlValidity: /],
    ['a DNS pattern with a malformed variable', 'trustDomain: example.org\nallowedDnsNames: ["{{sa}.svc"]\n', /config\.yaml: allowedDnsNames\[0\]: .*malformed variable/],
    ['a DNS pattern with a wildcard inside', 'trustDomain: example.org\nallowedDnsNames: ["a.*.example.org"]\n', /config\.yaml: allowedDnsNames\[0\]: .*only as the first label/],
    ['a DNS pattern that is no name', 'trustDomain: example.org\nallowedDnsNames: ["bad_name!.svc"]\n', /config\.yaml: allowedDnsNames\[0\]: .*not a DNS name pattern/],
    ['a DNS pattern list that is a string', 'trustDomain: example.org\nallowedDnsNames: "{{sa}}.svc"\n', /config\.yaml: allowedDnsNames: /],
    ['an IP range that is no address', 'trustDomain: example.org\nallowedIpAddresses: ["10.0.0/8"]\n', /config\.yaml: allowedIpAddresses\[0\]: .*CIDR/],
    ['an IP range with a prefix too long', 'trustDomain: example.org\nallowedIpAddresses: ["10.0.0.0/33"]\n', /config\.yaml: allowedIpAddresses\[0\]: /],
    ['not a mapping', '- a\n- b\n', /config\.yaml: must be a YAML mapping/],
    ['broken YAML', 'trustDomain: [\n', /config\.yaml:\d+: not valid YAML/],
    ['a duplicated key', 'trustDomain: example.org\ntrustDomain: other.org\n', /config\.yaml:\d+: not valid YAML/],
  ];
  for (const [what, text, expected] of cases) {
    it(`refuses ${what}, naming the field`, () => {
      assert.match(refusal(text), expected);
    });
  }
});
