#!/usr/bin/env node
// Entry point for `npx meshward` / the package bin: runs the compiled CLI (`make build` first).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
