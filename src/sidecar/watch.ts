// Watching a directory for changes to the files the sidecar reloads (credentials, policy). Kubernetes
// swaps a `..data` symlink, editors rename a new file over the old, tools rewrite in place: an event
// naming one of the loaded files (or `..data`) counts, every other name in the folder is ignored (the
// sidecar's own log file may sit beside its policy and change on every request). Bursts are debounced
// into one reload, but never postponed beyond a maximum wait, and a periodic re-check catches events the
// OS did not deliver. The callback compares contents itself, so spurious calls are cheap.
//
// node's fs.watch (one inotify watch on the directory) rather than chokidar: chokidar stats the file and
// re-reads the directory on each event it receives, for every name in the folder, which under a log file
// written per request cost several % of the sidecar's CPU (issue 14). Events carry the file name here,
// so the filter costs one Set lookup.
import fs from 'node:fs';

export interface DirectoryWatch {
  close(): Promise<void>;
}

export interface WatchOptions {
  /** Quiet time after the last event before the reload (a burst of writes becomes one reload). */
  debounceMs?: number;
  /** The longest a reload waits after the first event of a burst, however busy the names stay. */
  maxWaitMs?: number;
  recheckIntervalMs: number;
  onError?: (err: unknown) => void;
}

/** The symlink a Kubernetes volume swaps: every projected file changes with it. */
const KUBERNETES_DATA = '..data';

/** The reload-worthy subset of a directory's events: the names loaded, and `..data`. An unnamed event counts. */
export function isWatchedName(names: ReadonlySet<string>, filename: string | null): boolean {
  return filename === null || names.has(filename) || filename === KUBERNETES_DATA;
}

/**
 * A debouncer with a maximum wait: `poke()` (re)starts a `debounceMs` timer, but the call happens at the
 * latest `maxWaitMs` after the first poke of the burst.
 */
export class BoundedDebounce {
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;

  constructor(
    private readonly run: () => void,
    private readonly debounceMs: number,
    private readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  poke(): void {
    const now = this.now();
    if (this.timer === undefined) this.firstAt = now;
    else clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(this.debounceMs, this.firstAt + this.maxWaitMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, delay);
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export function watchDirectory(dir: string, names: readonly string[], onChange: () => void, opts: WatchOptions): DirectoryWatch {
  const watched = new Set(names);
  const debounce = new BoundedDebounce(onChange, opts.debounceMs ?? 200, opts.maxWaitMs ?? 1000);
  let watcher: fs.FSWatcher | undefined;
  let reportedError = false;
  let closed = false;
  const report = (err: unknown) => {
    // Once per failure streak: the periodic re-check keeps reloading meanwhile.
    if (!reportedError) opts.onError?.(err);
    reportedError = true;
  };
  // (Re)creates the watch: the directory may not exist yet (an agent creates it) or be replaced whole.
  const ensureWatch = () => {
    if (watcher !== undefined || closed) return;
    try {
      const w = fs.watch(dir, { persistent: true }, (_event, filename) => {
        if (isWatchedName(watched, filename)) debounce.poke();
      });
      w.on('error', (err) => {
        w.close();
        if (watcher === w) watcher = undefined;
        report(err);
      });
      watcher = w;
      reportedError = false;
    } catch (err) {
      report(err);
    }
  };
  ensureWatch();
  const interval = setInterval(() => {
    ensureWatch();
    onChange();
  }, opts.recheckIntervalMs);
  interval.unref();
  return {
    async close() {
      closed = true;
      clearInterval(interval);
      debounce.cancel();
      watcher?.close();
      watcher = undefined;
    },
  };
}
