#!/usr/bin/env node
// Entry point for `npx meshward` / the package bin: runs the compiled CLI (`make build` first).
// `meshward sidecar` is a long-running proxy: its V8 memory settings are applied before anything else is
// loaded, so start-up itself runs under them (src/sidecar/memory.ts).
if (process.argv[2] === 'sidecar') (await import('../dist/src/sidecar/memory.js')).capYoungGeneration();
const { main } = await import('../dist/src/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  // A long-running command (the sidecar with workers: 1) may already have set a failure status, for example
  // when its listener could not bind after main() returned: a 0 from main must not overwrite it.
  if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
});
