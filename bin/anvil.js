#!/usr/bin/env node
// The `anvil` CLI launcher: checks the Node.js version, then runs the compiled CLI (dist/gateway/cli/main.js),
// compiling it first in a development checkout whose sources are newer than dist/.
import { buildIfStale } from './build-if-stale.js';

buildIfStale({ quiet: true });
const { requireSupportedNode } = await import('../dist/gateway/node-version.js');
requireSupportedNode();
const { main } = await import('../dist/gateway/cli/main.js');
process.exitCode = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
  isTTY: process.stderr.isTTY,
});
