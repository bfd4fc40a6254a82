// Watching a directory for changes to files the sidecar reloads (credentials, policy). Kubernetes
// swaps a `..data` symlink, editors rename a new file over the old, tools rewrite in place: any event
// in the directory counts, bursts are debounced into one reload, and a periodic re-check catches
// events the OS did not deliver. The callback compares contents itself, so spurious calls are cheap.
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';

export interface DirectoryWatch {
  close(): Promise<void>;
}

export function watchDirectory(
  dir: string,
  onChange: () => void,
  opts: { debounceMs?: number; recheckIntervalMs: number; onError?: (err: unknown) => void },
): DirectoryWatch {
  const debounceMs = opts.debounceMs ?? 200;
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      onChange();
    }, debounceMs);
  };
  // followSymlinks false: the `..data` symlink itself is what changes; depth 0: only this directory.
  const watcher: FSWatcher = watch(dir, { ignoreInitial: true, depth: 0, followSymlinks: false, persistent: true });
  watcher.on('all', fire);
  watcher.on('raw', fire);
  watcher.on('error', (err) => opts.onError?.(err));
  const interval = setInterval(onChange, opts.recheckIntervalMs);
  interval.unref();
  return {
    async close() {
      clearInterval(interval);
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
