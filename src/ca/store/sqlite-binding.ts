// Which build of better-sqlite3 this Node runtime loads. Neither release line works on both runtimes we
// support (measured here, and reported upstream):
// - 12.x wraps its objects with node::ObjectWrap. Node 24.19+ made that class register an environment
//   cleanup hook, and when the garbage collector finalises a Statement after the environment is gone (at
//   exit, or in a worker's teardown) the process aborts with SIGABRT, "Assertion failed: (env) != nullptr"
//   in node::RemoveEnvironmentCleanupHook (nodejs/node#65446). Seen in our own test files on Node 24.21.
// - 13.x moved to node-addon-api (no ObjectWrap) and ships N-API prebuilds, but declares node >= 22 and
//   segfaults on Node 20 in a plain WAL transaction loop.
// So both are dependencies, 13.x under the npm alias `better-sqlite3-napi` (npm ci on Node 20 prints an
// EBADENGINE warning for it; nothing loads it there), and the runtime's major version picks one. Their
// JavaScript APIs are the same for everything meshward calls.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The package name loaded on this runtime (shown by tests and diagnostics). */
export const SQLITE_PACKAGE = NODE_MAJOR >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3';

export type SqliteDatabase = BetterSqlite3.Database;

const Database = createRequire(import.meta.url)(SQLITE_PACKAGE) as typeof BetterSqlite3;
export default Database;
