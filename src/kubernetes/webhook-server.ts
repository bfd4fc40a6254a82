// `meshward webhook serve`: the HTTPS shell around answerReview (admission.ts). Serves POST /inject and
// /inject-namespace; a body that is not an AdmissionReview gets 400 with one line and the server keeps
// serving. Its certificate is tls.crt/tls.key in --tls-dir (the agent's and a Secret volume's layout),
// watched: a new pair that parses and matches is swapped in for new handshakes (setSecureContext); a
// broken or half-written pair is logged and the old one kept.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MeshwardError } from '../errors.js';
import { watchDirectory, type DirectoryWatch } from '../sidecar/watch.js';
import { MalformedReview, answerReview, type Selection } from './admission.js';
import type { SidecarOptions } from './sidecar-spec.js';

/** The paths served and how each selects pods (deploy/kubernetes/webhook names them in the configuration). */
export const REVIEW_PATHS: Record<string, Selection> = { '/inject': 'pod', '/inject-namespace': 'namespace' };
/** The API server sends at most a few MiB (an object is limited to 1.5 MiB in etcd); more is not a review. */
const MAX_BODY = 4 << 20;

export interface WebhookOptions {
  host: string;
  port: number;
  tlsDir: string;
  sidecar: SidecarOptions;
  logger: Logger;
  recheckIntervalMs?: number;
}

interface Credentials {
  cert: string;
  key: string;
}

/** Reads and checks the pair; throws with one sentence naming the file. */
function loadCredentials(dir: string): Credentials {
  const files = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
  const [cert, key] = files.map((file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new MeshwardError('unavailable', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }) as [string, string];
  try {
    // Building a context is the check: OpenSSL refuses a cert or key it cannot parse, and a key that
    // does not belong to the certificate ("key values mismatch").
    createSecureContext({ cert, key });
    return { cert, key };
  } catch (err) {
    throw new MeshwardError('invalid_argument', `${dir}: tls.crt and tls.key are not a usable pair: ${(err as Error).message}`);
  }
}

export interface WebhookServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startWebhookServer(opts: WebhookOptions): Promise<WebhookServer> {
  let current = loadCredentials(opts.tlsDir);
  const server: Server = createServer({ ...current, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((err) => {
      // A client that went away mid-body, or a bug: answer 500 if still possible, never crash the server.
      opts.logger.error({ event: 'request_failed', err: (err as Error).message }, 'could not answer a request');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('internal error\n');
      else res.destroy();
    });
  });

  const reload = () => {
    let next: Credentials;
    try {
      next = loadCredentials(opts.tlsDir);
    } catch (err) {
      opts.logger.warn({ event: 'tls_reload_failed', err: (err as Error).message }, 'keeping the current certificate');
      return;
    }
    if (next.cert === current.cert && next.key === current.key) return;
    current = next;
    server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
    opts.logger.info({ event: 'tls_reloaded' }, 'serving a new certificate');
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const path = (req.url ?? '').split('?')[0]!;
    if (req.method === 'GET' && path === '/healthz') return reply(200, 'ok\n');
    const selection = REVIEW_PATHS[path];
    if (selection === undefined) return reply(404, `no such path ${path}: POST AdmissionReviews to /inject or /inject-namespace\n`);
    if (req.method !== 'POST') return reply(405, 'POST an AdmissionReview\n');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return reply(413, `an AdmissionReview is at most ${MAX_BODY} bytes\n`);
      chunks.push(chunk as Buffer);
    }
    try {
      let review: unknown;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        throw new MalformedReview(`not JSON: ${(err as Error).message}`);
      }
      const answer = answerReview(review, selection, opts.sidecar);
      const r = answer.response;
      opts.logger.info({ event: 'review', uid: r.uid, path, patched: r.patch !== undefined, allowed: r.allowed }, 'answered an AdmissionReview');
      reply(200, JSON.stringify(answer), 'application/json');
    } catch (err) {
      if (!(err instanceof MalformedReview)) throw err;
      opts.logger.warn({ event: 'malformed_review', path, err: err.message }, 'refused a malformed AdmissionReview');
      reply(400, `malformed AdmissionReview: ${err.message}\n`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The pair it loads (and `..data`, which watchDirectory always follows): other files in the folder are ignored.
  const watch: DirectoryWatch = watchDirectory(opts.tlsDir, ['tls.crt', 'tls.key'], reload, {
    recheckIntervalMs: opts.recheckIntervalMs ?? 30_000,
    onError: (err) => opts.logger.warn({ event: 'watch_error', err: String(err) }, 'watching the TLS folder failed'),
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    async close() {
      await watch.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
