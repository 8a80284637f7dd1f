/** GET /whoami: who the caller is to the gateway — tenant, access key id, subject, root or not, and its grants. */
import type { AdminCall } from './call.ts';

export function whoami(call: AdminCall): unknown {
  const { tenant, accessKeyId, subject, isRoot, scopes } = call.principal;
  return { tenant, accessKeyId, subject, root: isRoot, scopes };
}
