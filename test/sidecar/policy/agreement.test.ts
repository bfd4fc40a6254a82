// Fuzz target (issue 7, item 3): for random request targets, the decision the policy makes equals the
// decision an independent reference router makes on the path the app receives, read the way typical app
// routers read it. No input may make them disagree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePolicy, type Decision } from '../../../src/sidecar/policy/policy.js';

interface RefRoute {
  methods?: string[];
  path: string;
  scope?: string;
}

const ROUTES: RefRoute[] = [
  { methods: ['GET', 'HEAD'], path: '/admin/**', scope: 'admin' },
  { path: '/A/~x', scope: 'admin' },
  { methods: ['POST'], path: '/orders/*/items', scope: 'orders:write' },
  { methods: ['GET', 'HEAD'], path: '/orders/**', scope: 'orders:read' },
  { methods: ['POST'], path: '/orders', scope: 'orders:write' },
  { path: '/caf%C3%A9/*', scope: 'admin' },
  { path: '/shop.v1.Orders/*', scope: 'orders:read' },
  { path: '/a%3Bb', scope: 'admin' },
  { path: '/%2A/**', scope: 'orders:write' },
  { path: '/public/**' },
  { path: '/space%20x', scope: 'orders:read' },
  { methods: ['DELETE'], path: '/**', scope: 'admin' },
];

const CALLERS: Record<string, string[]> = {
  'spiffe://e.org/reader': ['orders:read'],
  'spiffe://e.org/writer': ['orders:read', 'orders:write'],
  'spiffe://e.org/admin': ['admin'],
  'spiffe://e.org/nobody': [],
};

function policyYaml(): string {
  const grants = Object.entries(CALLERS)
    .filter(([, scopes]) => scopes.length > 0)
    .map(([id, scopes]) => `  - identities: ["${id}"]\n    scopes: [${scopes.join(', ')}]\n`)
    .join('');
  const routes = ROUTES.map((r) => {
    const methods = r.methods ? `methods: [${r.methods.join(', ')}], ` : '';
    const rule = r.scope ? `    scope: ${r.scope}\n` : '    public: true\n';
    return `  - match: {${methods}path: "${r.path}"}\n${rule}`;
  }).join('');
  return `grants:\n${grants}routes:\n${routes}`;
}

// The reference: a plain recursive matcher over decodeURIComponent-decoded segments, routes tried in order.
// Wildcards are symbols, so that a literal "*" (written %2A) stays a literal.
const ONE = Symbol('*');
const REST = Symbol('**');
type RefSegment = string | typeof ONE | typeof REST;
const REF_PATTERNS: RefSegment[][] = ROUTES.map((r) =>
  r.path.split('/').slice(1).filter((s) => s !== '').map((s) => (s === '*' ? ONE : s === '**' ? REST : decodeURIComponent(s))),
);

function refMatch(pattern: readonly RefSegment[], segments: readonly string[]): boolean {
  if (pattern.length === 0) return segments.length === 0;
  if (pattern[0] === REST) return true;
  if (segments.length === 0) return false;
  return (pattern[0] === ONE || pattern[0] === segments[0]) && refMatch(pattern.slice(1), segments.slice(1));
}

function refDecide(method: string, segments: readonly string[], scopes: readonly string[]): { status: number; rule: string } {
  for (let i = 0; i < ROUTES.length; i++) {
    const route = ROUTES[i]!;
    if (route.methods !== undefined && !route.methods.includes(method)) continue;
    if (!refMatch(REF_PATTERNS[i]!, segments)) continue;
    return { status: route.scope === undefined || scopes.includes(route.scope) ? 200 : 403, rule: `routes[${i}]` };
  }
  return { status: 403, rule: 'no-route' };
}

/** Path of a target, as split by an app: '/' separated, one trailing '/' ignored (non-strict routing). */
function appSegments(pathname: string): string[] {
  const parts = pathname.split('/').slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.map(decodeURIComponent);
}

// Segments that survive normalization (route names, their encoded spellings, dot segments, '//')...
const PLAIN = [
  'admin', 'ADMIN', '%61dmin', 'orders', '1', 'items', 'A', '%41', '~x', '%7Ex', '%7ex', 'caf%C3%A9', 'caf%c3%a9', 'x',
  '.', '..', '%2e', '%2E%2e', '.%2e', '', 'a%3Bb', 'a%3bb', '%3B', '~', '*', '%2A', '%2a', '**', 'shop.v1.Orders', 'Get',
  'public', '%70ublic', '%25', '%252e', '%20', 'space%20x', '%E2%82%AC', '{x}', '|',
];
// ...and those that must make it refused.
const HOSTILE = [
  '%2F', '%2f', '%5C', '\\', ';', 'a;b', '%00', '%0a', '%7F', 'space x', '%FF', '%C3', 'x%', '%zz', '#', 'é', '\u0000', '\t',
  '?q=/../admin',
];

const targetArb = fc
  .tuple(
    fc.constantFrom('/', '/', '/', '/', '/', '/', '//', '', 'http://h/', '*', '\\'),
    fc.array(fc.oneof({ arbitrary: fc.constantFrom(...PLAIN), weight: 12 }, { arbitrary: fc.constantFrom(...HOSTILE), weight: 1 }), {
      maxLength: 7,
    }),
    fc.constantFrom('', '', '', '/', '?a=1', '?', '?next=/admin'),
  )
  .map(([prefix, segments, suffix]) => prefix + segments.join('/') + suffix);

const DANGEROUS = /%2f|%5c|\\|;|%[01][0-9a-f]|%7f|[^\x21-\x7e]|#|%(?![0-9a-f]{2})|%[89a-f][0-9a-f]/i;

test('fuzz: the policy and a reference app router never disagree on the path the app receives', () => {
  const policy = parsePolicy(policyYaml(), 'agreement.yaml');
  const principals = Object.entries(CALLERS).map(([id, scopes]) => ({ principal: policy.principal({ spiffeId: id, ou: [], id }), scopes }));
  const seen = { rejected: 0, allowed: 0, denied: 0, noRoute: 0 };
  fc.assert(
    fc.property(
      targetArb,
      fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'PUT', 'PROPFIND'),
      fc.integer({ min: 0, max: principals.length - 1 }),
      (raw, method, who) => {
        const { principal, scopes } = principals[who]!;
        const d: Decision = policy.decide(principal, method, raw, 0);
        if (d.status === 400) {
          seen.rejected++;
          assert.equal(d.allow, false);
          assert.equal(d.target, '');
          // Only targets with a dangerous feature, '..' above the root or a non-origin form are refused.
          if (!DANGEROUS.test(raw) && raw.startsWith('/')) assert.equal(d.reason, "path rejected: '..' above the root", raw);
          return;
        }
        if (d.status === 200) seen.allowed++;
        else if (d.rule === 'no-route') seen.noRoute++;
        else seen.denied++;
        const received = d.target;
        const queryAt = received.indexOf('?');
        const receivedPath = queryAt < 0 ? received : received.slice(0, queryAt);
        assert.equal(received.slice(receivedPath.length), raw.includes('?') ? raw.slice(raw.indexOf('?')) : '', 'the query is forwarded as sent');
        const views: [string, string[]][] = [
          // The app's router on the path it receives.
          ['received path', appSegments(receivedPath)],
          // An app that parses what it receives with the WHATWG URL parser (new URL(req.url, base)).
          ['WHATWG(received)', appSegments(new URL(`http://app${received}`).pathname)],
          // What the raw target means (WHATWG resolution, '//' collapsed): the policy may not read it differently.
          ['WHATWG(raw)', new URL(`http://app${raw}`).pathname.split('/').filter((s) => s !== '').map(decodeURIComponent)],
        ];
        for (const [view, segments] of views) {
          const ref = refDecide(method, segments, scopes);
          assert.deepEqual({ status: d.status, rule: d.rule }, ref, `${view}: ${method} ${JSON.stringify(raw)} -> ${JSON.stringify(received)}`);
        }
      },
    ),
    { numRuns: 4000 },
  );
  // The generator must exercise every outcome, or the property proves little.
  for (const [outcome, count] of Object.entries(seen)) assert.ok(count >= 100, `${outcome}: only ${count} cases`);
});
