// Typed errors shared by every layer: a code a program can act on and a sentence a user can act on.
// The CLI maps codes to exit statuses, the CA's gRPC server maps them to gRPC status codes.

export type ErrorCode =
  | 'usage' // the command line or a config file is malformed: exit 2
  | 'invalid_argument' // input (PEM, CSR, SPIFFE ID, TTL…) is malformed or breaks a rule
  | 'not_found' // a serial, file or CA directory that is not there
  | 'already_exists' // refusing to overwrite
  | 'permission_denied' // authenticated but not allowed (identity outside the allowed set, revoked…)
  | 'unauthenticated' // no valid credential
  | 'failed_precondition' // the state does not allow it now (expired issuer, rotate --finish too early)
  | 'unavailable' // a dependency (store, file system, upstream) cannot be reached
  | 'internal';

export class MeshwardError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshwardError';
    this.code = code;
  }
}

export function isMeshwardError(err: unknown): err is MeshwardError {
  return err instanceof MeshwardError;
}

/** Shorthand for the most common refusal: bad input. */
export function invalid(message: string, cause?: unknown): MeshwardError {
  return new MeshwardError('invalid_argument', message, cause === undefined ? undefined : { cause });
}
