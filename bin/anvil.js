#!/usr/bin/env node
// The `anvil` CLI launcher: registers tsx so the TypeScript sources run as they are, then starts gateway/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../gateway/cli/main.ts');
