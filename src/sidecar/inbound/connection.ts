// What the sidecar knows about one accepted inbound connection, computed once after the handshake so
// the per-request path only looks things up.
import type { Identity } from '../tls/identity.js';
import type { Policy, Principal } from '../policy/policy.js';

export interface Connection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly identity: Identity;
  /** Computed with the policy current at accept time. */
  readonly principal: Principal;
  /** The policy `principal` belongs to; requests use the CURRENT policy and re-derive the principal when it changed. */
  readonly policy: Policy;
  /** Precomputed x-forwarded-client-cert value. */
  readonly xfcc: string;
}
