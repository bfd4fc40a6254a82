// gRPC over the frontend: how to recognise a gRPC call and how to answer one the sidecar refuses.
// gRPC clients read the status from `grpc-status`/`grpc-message`, not from the HTTP status, so a refusal
// is an HTTP 200 "trailers-only" response (RFC: gRPC over HTTP/2, "Trailers-Only").

/** gRPC status codes the sidecar itself produces. */
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_UNAUTHENTICATED = 16;

/** True for application/grpc, application/grpc+proto, application/grpc-web… content types. */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc');
}

/** The gRPC code for an HTTP status the policy decided (400, 401, 403, 429) or the proxy produced (413, 502). */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GRPC_INVALID_ARGUMENT;
    case 401:
      return GRPC_UNAUTHENTICATED;
    case 403:
      return GRPC_PERMISSION_DENIED;
    case 413:
    case 429:
      return GRPC_RESOURCE_EXHAUSTED;
    default:
      return GRPC_UNAVAILABLE;
  }
}

/**
 * grpc-message is percent-encoded: bytes outside 0x20-0x7E and '%' itself become %XX of their UTF-8
 * bytes, so any reason (quotes, non-ASCII identities) survives a header.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}
