/** Shared fixtures of the policy tests: temporary data directories and principals built from a few grants. */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Principal, ScopeGrant } from '../../policy/index.ts';

/** A fresh data directory under os.tmpdir(), removed when the test ends. */
export function tempDataDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An application credential principal of `tenant` holding `scopes`. */
export function app(tenant: string, scopes: ScopeGrant[], accessKeyId = `AKIA${tenant.toUpperCase().padEnd(16, 'X')}`): Principal {
  return { tenant, accessKeyId, subject: `app:${accessKeyId}`, isRoot: false, scopes };
}

/** The root principal. */
export const ROOT: Principal = { tenant: 'root', accessKeyId: 'AKIAROOTROOTROOTROOT', subject: 'app:AKIAROOTROOTROOTROOT', isRoot: true, scopes: [] };
