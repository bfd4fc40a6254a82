// Policy documents that must be refused, each with a message that names the field, and ones that must load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../../src/sidecar/policy/policy.js';
import { isMeshwardError } from '../../../src/errors.js';
import {
  BILLING_GRANT, FRONTEND_GRANT, GRPC_ORDERS_ROUTE, LEGACY_BATCH_GRANT, ORDERS_ROUTES, PUBLIC_HEALTHZ_ROUTE, policyDocument,
} from '../../support/policy-documents.js';

const GRANT = `grants:\n${FRONTEND_GRANT}`;

/** A document with the frontend's grant and the given routes section. */
function withRoutes(routes: string): string {
  return policyDocument({ grants: [FRONTEND_GRANT], routes: [routes] });
}

const rejections: [name: string, yaml: string, expected: string][] = [
  ['not YAML', 'routes: [\n', 'policy.yaml:2: not valid YAML'],
  ['duplicate key', 'routes: []\nroutes: []\n', 'not valid YAML: Map keys must be unique'],
  ['empty document', '', 'policy.yaml: has neither "routes"'],
  ['a list at the top', '- a\n', 'policy.yaml: must be a YAML mapping'],
  ['unknown top-level key', 'rotues: []\n', 'policy.yaml: rotues: unknown field (did you mean "routes"?); valid fields here: mode, grants, routes, tcp, limits'],
  ['unknown route key', withRoutes('  - match: {path: /x}\n    scopes: orders:read\n'), 'routes[0].scopes: unknown field (did you mean "scope"?)'],
  ['unknown match key', withRoutes('  - match: {mehtods: [GET], path: /x}\n    scope: orders:read\n'), 'routes[0].match.mehtods: unknown field'],
  ['unknown grant key', 'grants:\n  - identity: ["spiffe://e.org/a"]\n    scopes: [a]\nroutes: []\n', 'grants[0].identity: unknown field; valid fields here: identities, subjects, scopes'],
  ['unknown subject key', 'grants:\n  - subjects: [{cn: a, o: b}]\n    scopes: [a]\nroutes: []\n', 'grants[0].subjects[0].o: unknown field'],
  ['unknown tcp key', `${GRANT}tcp: {scope: orders:read, port: 1}\n`, 'tcp.port: unknown field'],
  ['bad mode', 'mode: enforcing\nroutes: []\n', 'mode: "enforcing" is not one of enforce, audit'],
  ['routes not a list', 'routes: {path: /x}\n', 'routes: expected a list, got a mapping'],
  ['scope not a string', withRoutes('  - match: {path: /x}\n    scope: 5\n'), 'routes[0].scope: expected a string, got 5'],
  ['public not a boolean', withRoutes('  - match: {path: /x}\n    public: "yes"\n'), 'routes[0].public: expected a boolean, got "yes"'],
  ['missing match.path', withRoutes('  - match: {methods: [GET]}\n    scope: orders:read\n'), 'routes[0].match.path: is required'],
  ['missing match', withRoutes('  - scope: orders:read\n'), 'routes[0].match: is required'],
  ['grant without callers', 'grants:\n  - scopes: [a]\nroutes: []\n', 'grants[0]: needs "identities"'],
  ['empty identities list', 'grants:\n  - identities: []\n    scopes: [a]\nroutes: []\n', 'grants[0].identities: must not be an empty list'],
  ['bad SPIFFE pattern', 'grants:\n  - identities: ["spiffe://Example.org/a"]\n    scopes: [a]\nroutes: []\n', 'grants[0].identities[0]: Invalid SPIFFE ID pattern'],
  ['SPIFFE ** not last', 'grants:\n  - identities: ["spiffe://e.org/**/x"]\n    scopes: [a]\nroutes: []\n', 'grants[0].identities[0]: Invalid SPIFFE ID pattern'],
  ['not a SPIFFE pattern', 'grants:\n  - identities: ["https://e.org/a"]\n    scopes: [a]\nroutes: []\n', 'grants[0].identities[0]:'],
  ['duplicate identity', 'grants:\n  - identities: ["spiffe://e.org/a", "spiffe://e.org/a"]\n    scopes: [a]\nroutes: []\n', 'grants[0].identities[1]: "spiffe://e.org/a" is listed twice'],
  ['no scopes', 'grants:\n  - identities: ["spiffe://e.org/a"]\n    scopes: []\nroutes: []\n', 'grants[0].scopes: must list at least one scope'],
  ['empty scope name', 'grants:\n  - identities: ["spiffe://e.org/a"]\n    scopes: [a, ""]\nroutes: []\n', 'grants[0].scopes[1]: a scope name must not be empty'],
  ['scope with a space', 'grants:\n  - identities: ["spiffe://e.org/a"]\n    scopes: ["orders read"]\nroutes: []\n', 'grants[0].scopes[0]: "orders read" is not a scope name'],
  ['duplicate scope', 'grants:\n  - identities: ["spiffe://e.org/a"]\n    scopes: [a, a]\nroutes: []\n', 'grants[0].scopes[1]: "a" is listed twice'],
  ['empty subject', 'grants:\n  - subjects: [{}]\n    scopes: [a]\nroutes: []\n', 'grants[0].subjects[0]: needs cn, ou or both'],
  ['empty cn', 'grants:\n  - subjects: [{cn: ""}]\n    scopes: [a]\nroutes: []\n', 'grants[0].subjects[0].cn: must not be empty'],
  ['misspelled method', withRoutes('  - match: {methods: [GTE], path: /x}\n    scope: orders:read\n'), 'routes[0].match.methods[0]: "GTE" is not an HTTP method'],
  ['lower-case method', withRoutes('  - match: {methods: [GET, get], path: /x}\n    scope: orders:read\n'), 'routes[0].match.methods[1]: "get" is not an HTTP method (methods are upper case: GET)'],
  ['empty methods list', withRoutes('  - match: {methods: [], path: /x}\n    scope: orders:read\n'), 'routes[0].match.methods: must not be an empty list'],
  ['duplicate method', withRoutes('  - match: {methods: [GET, GET], path: /x}\n    scope: orders:read\n'), 'routes[0].match.methods[1]: "GET" is listed twice'],
  ['path without leading slash', withRoutes('  - match: {path: orders}\n    scope: orders:read\n'), 'routes[0].match.path: "orders" must start with "/"'],
  ['empty path', withRoutes('  - match: {path: ""}\n    scope: orders:read\n'), 'routes[0].match.path: must not be empty'],
  ['** not last', withRoutes('  - match: {path: /a/**/b}\n    scope: orders:read\n'), 'routes[0].match.path: "/a/**/b": "**" is allowed only as the last segment'],
  ['partial wildcard', withRoutes('  - match: {path: /orders/a*}\n    scope: orders:read\n'), 'routes[0].match.path: "/orders/a*": "*" must be a whole segment'],
  ['trailing slash', withRoutes('  - match: {path: /orders/}\n    scope: orders:read\n'), 'routes[0].match.path: "/orders/" must not end with "/"'],
  ['empty segment', withRoutes('  - match: {path: /a//b}\n    scope: orders:read\n'), 'routes[0].match.path: "/a//b": empty segment'],
  ['dot-dot segment', withRoutes('  - match: {path: /a/../b}\n    scope: orders:read\n'), 'routes[0].match.path: "/a/../b": a ".." segment never matches'],
  ['encoded dot segment', withRoutes('  - match: {path: /a/%2e}\n    scope: orders:read\n'), 'routes[0].match.path: "/a/%2e": a "." segment never matches'],
  ['encoded slash', withRoutes('  - match: {path: /a%2Fb}\n    scope: orders:read\n'), 'routes[0].match.path: "/a%2Fb": requests with an encoded "/" are rejected'],
  ['semicolon', withRoutes('  - match: {path: /admin;x}\n    scope: orders:read\n'), 'routes[0].match.path: "/admin;x": requests with ";" in the path are rejected'],
  ['query in a pattern', withRoutes('  - match: {path: /a?b=1}\n    scope: orders:read\n'), 'routes[0].match.path: "/a?b=1": a pattern matches the path only'],
  ['malformed escape', withRoutes('  - match: {path: /a%zz}\n    scope: orders:read\n'), 'routes[0].match.path: "/a%zz": malformed percent escape'],
  ['backslash', withRoutes('  - match: {path: "/a\\\\b"}\n    scope: orders:read\n'), 'routes[0].match.path: "/a\\b": requests with "\\" are rejected'],
  ['scope and public', withRoutes('  - match: {path: /x}\n    scope: orders:read\n    public: true\n'), 'routes[0]: has both "scope" and "public: true"'],
  ['neither scope nor public', withRoutes('  - match: {path: /x}\n'), 'routes[0]: needs "scope: NAME" or "public: true"'],
  ['public: false alone', withRoutes('  - match: {path: /x}\n    public: false\n'), 'routes[0]: needs "scope: NAME" or "public: true"'],
  ['empty route scope', withRoutes('  - match: {path: /x}\n    scope: ""\n'), 'routes[0].scope: a scope name must not be empty'],
  ['scope nobody holds', withRoutes('  - match: {path: /x}\n    scope: orders:wirte\n'), 'routes[0].scope: "orders:wirte" is not granted by any grant'],
  ['shadowed route', withRoutes('  - match: {methods: [GET], path: /orders/**}\n    scope: orders:read\n  - match: {methods: [GET], path: /orders/special}\n    scope: orders:write\n'), 'routes[1]: can never match: routes[0] (GET /orders/**) comes first'],
  ['duplicate route', withRoutes('  - match: {path: /x}\n    public: true\n  - match: {path: /x}\n    scope: orders:read\n'), 'routes[1]: can never match: routes[0] (any method /x)'],
  ['shadowed by a wildcard', withRoutes('  - match: {path: /*/items}\n    public: true\n  - match: {methods: [POST], path: /orders/items}\n    scope: orders:read\n'), 'routes[1]: can never match: routes[0]'],
  ['tcp scope nobody holds', `${GRANT}tcp: {scope: redis:connect}\n`, 'tcp.scope: "redis:connect" is not granted by any grant'],
  ['empty tcp scope', `${GRANT}tcp: {scope: ""}\n`, 'tcp.scope: a scope name must not be empty'],
  ['no routes and no tcp', GRANT, 'policy.yaml: has neither "routes"'],
  ['limit without callers', 'routes: []\nlimits:\n  - rps: 5\n', 'limits[0]: needs "identities"'],
  ['zero rps', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: 0\n', 'limits[0].rps: must be greater than 0, got 0'],
  ['negative rps', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: -3\n', 'limits[0].rps: must be greater than 0, got -3'],
  ['infinite rps', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: .inf\n', 'limits[0].rps:'],
  ['rps as text', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: fast\n', 'limits[0].rps: expected a number, got "fast"'],
  ['missing rps', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n', 'limits[0].rps: is required'],
  ['zero burst', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: 1\n    burst: 0\n', 'limits[0].burst: must be a whole number of at least 1, got 0'],
  ['fractional burst', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: 1\n    burst: 1.5\n', 'limits[0].burst: must be a whole number of at least 1, got 1.5'],
  ['bad limit pattern', 'routes: []\nlimits:\n  - identities: ["spiffe://e.org/a*"]\n    rps: 1\n', 'limits[0].identities[0]: Invalid SPIFFE ID pattern'],
];

for (const [name, yaml, expected] of rejections) {
  test(`refuses: ${name}`, () => {
    assert.throws(
      () => parsePolicy(yaml, 'policy.yaml'),
      (err: unknown) => {
        assert.ok(isMeshwardError(err), `not a MeshwardError: ${String(err)}`);
        assert.equal(err.code, 'invalid_argument');
        assert.ok(err.message.startsWith('policy.yaml'), err.message);
        assert.ok(err.message.includes(expected), `expected ${JSON.stringify(expected)} in ${JSON.stringify(err.message)}`);
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      },
    );
  });
}

test('refuses wildcard combinations that would compile into too many states', () => {
  // Route i has a literal at position i and "*" elsewhere: the automaton must track every subset seen so far.
  const depth = 16;
  const routes = Array.from({ length: depth }, (_, i) => {
    const segments = Array.from({ length: depth }, (_, j) => (j === i ? `x${i}` : '*'));
    return `  - match: {path: /${segments.join('/')}}\n    public: true\n`;
  }).join('');
  assert.throws(() => parsePolicy(`routes:\n${routes}`, 'policy.yaml'), /policy\.yaml: routes: the route patterns combine into more than \d+ matching states/);
});

test('lists several problems on one line', () => {
  const yaml = withRoutes('  - match: {methods: [GTE], path: orders}\n    scope: orders:read\n');
  assert.throws(() => parsePolicy(yaml, 'p.yaml'), (err: Error) => {
    assert.match(err.message, /^p\.yaml: routes\[0\]\.match\.methods\[0\]: "GTE" is not an HTTP method; routes\[0\]\.match\.path: "orders" must start with "\/"$/);
    return true;
  });
});

test('loads a policy using every section (grants by identity pattern and subject, routes, tcp, limits) with its defaults', () => {
  const policy = parsePolicy(
    policyDocument({
      grants: [FRONTEND_GRANT, BILLING_GRANT, LEGACY_BATCH_GRANT, '  - identities: ["spiffe://example.org/ns/cache/sa/client"]\n    scopes: [redis:connect]\n'],
      routes: [ORDERS_ROUTES, GRPC_ORDERS_ROUTE, PUBLIC_HEALTHZ_ROUTE],
      rest: 'tcp: {scope: redis:connect}\nlimits:\n  - identities: ["spiffe://example.org/ns/batch/**"]\n    rps: 50\n    burst: 100\n',
    }),
    'policy.yaml',
  );
  assert.equal(policy.mode, 'enforce');
  assert.equal(policy.source, 'policy.yaml');
});

test('accepts an explicit empty route list (deny every HTTP request), audit mode and a default burst', () => {
  const policy = parsePolicy('mode: audit\nroutes: []\nlimits:\n  - identities: ["spiffe://e.org/**"]\n    rps: 0.5\n', 'p.yaml');
  assert.equal(policy.mode, 'audit');
  const p = policy.principal({ spiffeId: 'spiffe://e.org/a', ou: [], id: 'spiffe://e.org/a' });
  assert.equal(policy.decide(p, 'GET', '/', 0).rule, 'no-route');
});

test('accepts percent escapes and non-ASCII text in patterns, and a literal "*" written %2A', () => {
  const policy = parsePolicy('routes:\n  - match: {path: /caf%C3%A9/%2A}\n    public: true\n  - match: {path: /thé}\n    public: true\n', 'p.yaml');
  const p = policy.principal({ ou: [], id: 'CN=x' });
  assert.equal(policy.decide(p, 'GET', '/caf%c3%a9/*', 0).rule, 'routes[0]');
  assert.equal(policy.decide(p, 'GET', '/caf%C3%A9/x', 0).rule, 'no-route');
  assert.equal(policy.decide(p, 'GET', '/th%C3%A9', 0).rule, 'routes[1]');
});
