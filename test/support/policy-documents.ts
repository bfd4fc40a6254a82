// The shop's policy, in pieces the policy tests put together: the grants and routes several documents share
// (the frontend's orders scopes, the legacy batch job by cn/ou, reading and writing orders, a public /healthz),
// so each test writes only what its document adds. YAML text, as a user writes it: the tests parse it.

/** The frontend holds orders:read and orders:write. */
export const FRONTEND_GRANT = `  - identities: ["spiffe://example.org/ns/shop/sa/frontend"]
    scopes: [orders:read, orders:write]
`;

/** Every billing workload may read orders. */
export const BILLING_GRANT = `  - identities: ["spiffe://example.org/ns/billing/**"]
    scopes: [orders:read]
`;

/** A certificate without a SPIFFE ID, granted by its subject. */
export const LEGACY_BATCH_GRANT = `  - subjects: [{cn: legacy-batch, ou: payments}]
    scopes: [orders:read]
`;

/** GET/HEAD under /orders need orders:read, POST /orders needs orders:write. */
export const ORDERS_ROUTES = `  - match: {methods: [GET, HEAD], path: /orders/**}
    scope: orders:read
  - match: {methods: [POST], path: /orders}
    scope: orders:write
`;

/** The gRPC service's methods need orders:read. */
export const GRPC_ORDERS_ROUTE = `  - match: {path: /shop.v1.Orders/*}
    scope: orders:read
`;

export const PUBLIC_HEALTHZ_ROUTE = `  - match: {path: /healthz}
    public: true
`;

/** A policy document from its sections; grants and routes are lists of the entries above (or a test's own). */
export function policyDocument(sections: { grants?: string[]; routes: string[]; rest?: string }): string {
  const grants = sections.grants === undefined ? '' : `grants:\n${sections.grants.join('')}`;
  return `${grants}routes:\n${sections.routes.join('')}${sections.rest ?? ''}`;
}
