#!/usr/bin/env node
// The `anvil` CLI launcher: runs the compiled CLI (dist/gateway/cli/main.js), compiling it first in a development
// checkout whose sources are newer than dist/.
import { buildIfStale } from './build-if-stale.js';

buildIfStale({ quiet: true });
await import('../dist/gateway/cli/main.js');
