#!/usr/bin/env node
// Entry point for `npx meshward` / the package bin: runs the compiled CLI (`make build` first).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  // A long-running command (the sidecar with workers: 1) may already have set a failure status, for example
  // when its listener could not bind after main() returned: a 0 from main must not overwrite it.
  if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
});
