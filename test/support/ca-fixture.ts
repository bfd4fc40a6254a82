// One CA under test for a test file: a temporary directory with a fresh CA (trust domain example.org) kept in
// SQLite or in a new database of the PostgreSQL of test/support/postgres.ts, optionally prepared (config files,
// tokens, certificates) and then served by in-process gRPC servers and/or real `meshward ca serve` processes.
// Everything is set up in `before` and stopped and removed in `after`; what varies between the CA test files
// (the store, the server options, the serve flags, how many replicas) is a parameter.
import { after, before } from 'node:test';
import type { CaClient } from '../../src/agent/client.js';
import type { CaServer, CaServerOptions } from '../../src/ca/server/server.js';
import { clientFor, makeCa, removeDir, startServer, tempDir } from '../ca-service/harness.js';
import { startServeProcess, type ServeProcess } from './ca-serve-process.js';
import type { PostgresCluster } from './postgres.js';

export interface CaFixtureOptions {
  /** Keep the CA in a new database of this cluster (from usePostgres()); without it, in D/ca.db. */
  postgres?: { readonly cluster: PostgresCluster };
  /** Rewrites the new database's DSN, e.g. adding a password that trust authentication ignores. */
  dsn?: (dsn: string) => string;
  /** Runs after the CA is made and before anything serves it. */
  prepare?: (ca: { root: string; dir: string; store: string | undefined }) => void | Promise<void>;
  /** In-process servers (CaServer on 127.0.0.1:0), all with these options (the store is added). */
  inProcess?: { count?: number; options?: Partial<CaServerOptions> };
  /** Real `meshward ca serve` processes, each with these extra arguments. */
  processes?: { count?: number; args?: string[] };
  /**
   * Runs once everything serves, inside the fixture's own before hook. Node 20 runs a file's top-level
   * before hooks concurrently (inside a describe they run in order), so a top-level set-up that needs the
   * running CA goes here rather than in a before hook of its own.
   */
  serving?: (ca: CaFixture) => void | Promise<void>;
}

export interface CaFixture {
  /** The temporary directory around the CA (removed after the tests). */
  readonly root: string;
  /** The CA's directory, `<root>/ca`. */
  readonly dir: string;
  /** The PostgreSQL DSN the CA lives in; undefined on SQLite. */
  readonly store: string | undefined;
  /** The same DSN, for tests that only run on PostgreSQL. */
  readonly dsn: string;
  /** The in-process servers, in start order; `server` is the first. */
  readonly servers: CaServer[];
  readonly server: CaServer;
  /** The `ca serve` processes, in start order; `serve` is the first. */
  readonly processes: ServeProcess[];
  readonly serve: ServeProcess;
  /**
   * A gRPC client of the first in-process server, else of the first process (presenting `mtls` when given),
   * closed after the tests.
   */
  client(mtls?: { keyPem: string; chainPem: string }): CaClient;
  /** Starts in-process server `index` again on its port with the same options, after a test killed it. */
  restartServer(index?: number): Promise<void>;
}

/** Registers the set-up and tear-down of one CA for the calling test file (or describe block). */
export function useCa(opts: CaFixtureOptions = {}): CaFixture {
  let root = '';
  let dir = '';
  let store: string | undefined;
  const servers: CaServer[] = [];
  const processes: ServeProcess[] = [];
  const clients: CaClient[] = [];
  const started = <T>(what: string, list: T[]): T => {
    if (list.length === 0) throw new Error(`this CA fixture has no ${what} (or it is used before before() ran)`);
    return list[0]!;
  };

  const serverOptions = (): Partial<CaServerOptions> => ({ ...opts.inProcess?.options, ...(store ? { store } : {}) });
  before(async () => {
    root = tempDir();
    if (opts.postgres) {
      const dsn = await opts.postgres.cluster.createDatabase();
      store = opts.dsn ? opts.dsn(dsn) : dsn;
    }
    dir = await makeCa(root, store);
    await opts.prepare?.({ root, dir, store });
    for (let i = 0; i < (opts.inProcess ? opts.inProcess.count ?? 1 : 0); i++) {
      servers.push(await startServer(dir, serverOptions()));
    }
    for (let i = 0; i < (opts.processes ? opts.processes.count ?? 1 : 0); i++) {
      processes.push(await startServeProcess(dir, store ?? 'sqlite', opts.processes?.args ?? []));
    }
    await opts.serving?.(fixture);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
    for (const p of processes) await p.stop();
    if (root !== '') removeDir(root);
  });

  const fixture: CaFixture = {
    get root() { return root; },
    get dir() { return dir; },
    get store() { return store; },
    get dsn() {
      if (store === undefined) throw new Error('this CA fixture keeps its CA in SQLite: pass postgres to useCa() for a DSN');
      return store;
    },
    servers,
    get server() { return started('in-process server', servers); },
    processes,
    get serve() { return started('ca serve process', processes); },
    client(mtls) {
      const port = servers[0]?.port ?? started('server', processes).port;
      const client = clientFor({ port }, dir, mtls);
      clients.push(client);
      return client;
    },
    async restartServer(index = 0) {
      const { port } = started('in-process server', servers.slice(index));
      servers[index] = await startServer(dir, { ...serverOptions(), listen: `127.0.0.1:${port}` });
    },
  };
  return fixture;
}
