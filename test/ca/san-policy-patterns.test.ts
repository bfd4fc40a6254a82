// SanPolicy on its own: which names a template allows for which SPIFFE ID (variables from /KEY/VALUE pairs
// and the trust domain, *. one label, **. one or more, exact otherwise) and which addresses a range allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SanPolicy } from '../../src/ca/san-policy.js';

const policy = SanPolicy.compile(['{{sa}}.{{ns}}.svc', 'api.{{trustDomain}}', '*.{{team}}.example.org', '**.shared.example.org'], ['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
const ORDERS = 'spiffe://prod.example/ns/shop/sa/orders';
const TEAM = 'spiffe://prod.example/team/blue/svc/x';

const cases: [string, string, string[], string[], boolean][] = [
  ['its own service name', ORDERS, ['orders.shop.svc'], [], true],
  ['the trust domain template', ORDERS, ['api.prod.example'], [], true],
  ['another service account', ORDERS, ['payments.shop.svc'], [], false],
  ['a template whose variable the ID lacks', ORDERS, ['x.blue.example.org'], [], false],
  ['one label under a team', TEAM, ['x.blue.example.org'], [], true],
  ['two labels under a team', TEAM, ['a.x.blue.example.org'], [], false],
  ['the bare team suffix', TEAM, ['blue.example.org'], [], false],
  ['deep under a **. pattern', TEAM, ['a.b.c.shared.example.org'], [], true],
  ['the bare **. suffix', TEAM, ['shared.example.org'], [], false],
  ['a look-alike suffix', TEAM, ['evilshared.example.org'], [], false],
  ['an address in a range', ORDERS, [], ['10.255.0.1'], true],
  ['one listed address', ORDERS, [], ['192.0.2.7'], true],
  ['its neighbour', ORDERS, [], ['192.0.2.8'], false],
  ['IPv6 in a range', ORDERS, [], ['fd12::1'], true],
  ['IPv6 outside', ORDERS, [], ['2001:db8::1'], false],
  ['one bad name among good ones', ORDERS, ['orders.shop.svc', 'x.example.com'], ['10.0.0.1'], false],
];
for (const [what, id, dns, ips, allowed] of cases) {
  test(`SanPolicy: ${what} → ${allowed ? 'allowed' : 'refused'}`, () => {
    const refusal = policy.refusal(id, dns, ips);
    if (allowed) assert.equal(refusal, undefined);
    else assert.match(refusal ?? '', /is not allowed/);
  });
}

test('SanPolicy.compile refuses malformed templates and ranges, naming them', () => {
  for (const [templates, ranges, message] of [
    [['{{ns.svc'], [], /malformed variable/],
    [['a.**.b'], [], /only as the first label/],
    [['Upper.{{ns}}.svc'], [], /lowercase/],
    [[''], [], /DNS name pattern/],
    [[], ['10.0.0.0/8/1'], /CIDR/],
    [[], ['::1/129'], /CIDR/],
    [[], ['host.example'], /CIDR/],
  ] as [string[], string[], RegExp][]) {
    assert.throws(() => SanPolicy.compile(templates, ranges), message, `${templates} ${ranges}`);
  }
});
