// `meshward ca serve --dir D --listen HOST:PORT [--admin HOST:PORT]`: runs the CA's gRPC API until SIGINT/SIGTERM,
// and with --admin its /healthz, /readyz and /metrics (src/ca/server/admin.ts). Logs (one JSON line per Sign
// decision, plus start/stop and certificate events) go to stdout through the sidecar's log buffer
// (src/sidecar/observe/log.ts): the Sign lines gathered into chunks written asynchronously (250 ms after a line
// at the latest), instead of pino's synchronous write per line (3-6 % of a Sign's CPU profile); the other lines
// at the end of the event-loop turn that logged them. Every buffered line is
// written before the process exits: flushed on SIGTERM/SIGINT, written synchronously on any other exit; only
// a SIGKILL (or a crash of the process itself) can lose the last 250 ms of lines (the store keeps every
// issued certificate regardless).
import { MeshwardError } from '../errors.js';
import { CaServer } from '../ca/server/server.js';
import { DEFAULT_SIGN_RATE_LIMIT } from '../ca/server/rate-limit.js';
import { DEFAULT_SIGN_CONCURRENCY, DEFAULT_SIGN_QUEUE } from '../ca/server/admission.js';
import { DEFAULT_AUDIENCE } from '../ca/jwt.js';
import { CaAdmin, parseAdminListen } from '../ca/server/admin.js';
import { CaMetrics } from '../ca/server/metrics.js';
import { createLogger, flushLogs, type LoggerShape } from '../sidecar/observe/log.js';
import { caDirCommand, durationFlag } from './command-support.js';

/**
 * The CA's lines as they always were (pino's default epoch-ms time, `component: ca-server`); the per-Sign audit
 * lines (`event: sign`) chunked, the lifecycle lines (`listening`, `crl_written`, ...) written at once.
 */
const CA_LOG_SHAPE: LoggerShape = { component: 'ca-server', isoTime: false, chunkedEvents: new Set(['sign']) };

export const caServeCommand = caDirCommand('ca serve', 'dir', {
  describe: 'serve the CA over gRPC/TLS: Sign (bootstrap token, Kubernetes token or mTLS renewal), GetTrustBundle, WatchTrustBundle',
  dirDescribe: 'the CA directory (key files and config.yaml; may be read-only)',
  options: (y) => y
    .option('listen', { type: 'string', demandOption: true, describe: 'HOST:PORT to listen on (e.g. 0.0.0.0:8443)' })
    .option('admin', { type: 'string', describe: 'HOST:PORT for /healthz, /readyz (503 while the store is unreachable) and /metrics over plain HTTP (e.g. 127.0.0.1:9090; off by default)' })
    .option('san', { type: 'string', array: true, describe: 'extra DNS name or IP for the serving certificate (repeatable)' })
    .option('serving-ttl', { type: 'string', describe: "lifetime of the server's own certificate (default: the CA's default TTL); renewed at 2/3" })
    .option('sign-rate', { type: 'number', describe: `Sign calls per second allowed per identity (default ${DEFAULT_SIGN_RATE_LIMIT.ratePerSecond})` })
    .option('sign-burst', { type: 'number', describe: `Sign calls an identity may make at once (default ${DEFAULT_SIGN_RATE_LIMIT.burst})` })
    .option('sign-concurrency', { type: 'number', describe: `Sign calls worked on at once; later ones wait their turn in arrival order (default ${DEFAULT_SIGN_CONCURRENCY})` })
    .option('sign-queue', { type: 'number', describe: `Sign calls that may wait for their turn; beyond it RESOURCE_EXHAUSTED, retry with backoff (default ${DEFAULT_SIGN_QUEUE})` })
    .option('jwks', { type: 'string', describe: "the cluster's JWKS file for Kubernetes service-account tokens (overrides D/kubernetes.yaml)" })
    .option('jwt-issuer', { type: 'string', describe: 'the iss of the service-account tokens (with --jwks)' })
    .option('jwt-audience', { type: 'string', describe: `the aud the tokens must carry (default ${DEFAULT_AUDIENCE})` })
    .option('crl-check-interval', { type: 'string', describe: 'how often to read the store for a new or due CRL when PostgreSQL sends no notification (default 5s)' }),
  handler: async (args) => {
    if ((args.jwks === undefined) !== (args['jwt-issuer'] === undefined)) {
      throw new MeshwardError('usage', '--jwks and --jwt-issuer go together: give both, or neither to use D/kubernetes.yaml');
    }
    const rate = args['sign-rate'] ?? DEFAULT_SIGN_RATE_LIMIT.ratePerSecond;
    const burst = args['sign-burst'] ?? DEFAULT_SIGN_RATE_LIMIT.burst;
    if (!(rate > 0) || !(burst >= 1)) throw new MeshwardError('usage', '--sign-rate must be positive and --sign-burst at least 1');
    const signConcurrency = args['sign-concurrency'] ?? DEFAULT_SIGN_CONCURRENCY;
    const signQueue = args['sign-queue'] ?? DEFAULT_SIGN_QUEUE;
    if (!Number.isSafeInteger(signConcurrency) || signConcurrency < 1) throw new MeshwardError('usage', '--sign-concurrency must be a whole number of at least 1');
    if (!Number.isSafeInteger(signQueue) || signQueue < 0) throw new MeshwardError('usage', '--sign-queue must be a whole number of at least 0');
    const crlCheckMs = args['crl-check-interval'] === undefined ? undefined : durationFlag(args['crl-check-interval'], '--crl-check-interval');
    if (crlCheckMs !== undefined && crlCheckMs < 100) throw new MeshwardError('usage', '--crl-check-interval must be at least 100ms');
    if (args.admin !== undefined) parseAdminListen(args.admin); // a usage error before anything starts
    const logger = createLogger('info', 1, CA_LOG_SHAPE);
    const metrics = args.admin === undefined ? undefined : new CaMetrics();
    const server = await CaServer.start({
      dir: args.dir,
      store: args.store,
      listen: args.listen,
      sans: args.san,
      servingTtlMs: args['serving-ttl'] === undefined ? undefined : durationFlag(args['serving-ttl'], '--serving-ttl'),
      signRateLimit: { ratePerSecond: rate, burst },
      signConcurrency,
      signQueue,
      kubernetes: args.jwks ? { jwksFile: args.jwks, issuer: args['jwt-issuer']!, audience: args['jwt-audience'] ?? DEFAULT_AUDIENCE } : undefined,
      crlCheckMs,
      logger,
      metrics,
    });
    let admin: CaAdmin | undefined;
    if (args.admin !== undefined) {
      try {
        admin = await CaAdmin.start(args.admin, server.authority.store, metrics!);
      } catch (err) {
        await server.close();
        throw err;
      }
      logger.info({ event: 'admin_listening', address: `${admin.address.address}:${admin.address.port}`, port: admin.address.port }, 'CA admin listening (/healthz, /readyz, /metrics)');
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ event: 'stopping', signal }, 'CA server stopping');
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        // The admin listener goes first: /readyz stops answering while calls in flight finish.
        void (admin?.close() ?? Promise.resolve()).then(() => server.close()).then(() => flushLogs(logger)).then(resolve);
      };
      const onInt = () => stop('SIGINT');
      const onTerm = () => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
  },
});
