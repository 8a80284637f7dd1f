/**
 * The tenant check sessions and capabilities make on every use, read from the core tenants table through a cache
 * that follows the policy revision.
 */
import type { Kysely } from 'kysely';
import type { RevisionCache } from '../database/revision-cache.ts';
import type { PolicyTables } from '../database/tables.ts';

/** A tenant's immutable id and whether it is disabled (or locked down), or null when no tenant has the name. */
export type TenantState = { id: string; disabled: boolean } | null;

/** The state of the tenant that has this name now, cached. */
export function tenantState(cache: RevisionCache<TenantState>, db: Kysely<PolicyTables>, tenant: string): Promise<TenantState> {
  return cache.get(tenant, async () => {
    const row = await db.selectFrom('tenants').select(['id', 'disabled']).where('name', '=', tenant).executeTakeFirst();
    return row === undefined ? null : { id: row.id, disabled: row.disabled !== 0 }; // disabled or locked down
  });
}

/**
 * Whether a tenant exists and is enabled; with `id`, only while the tenant of that name is still the one with that
 * immutable id (a re-created tenant of the same name is another tenant).
 */
export async function tenantEnabled(cache: RevisionCache<TenantState>, db: Kysely<PolicyTables>, tenant: string, id?: string): Promise<boolean> {
  const state = await tenantState(cache, db, tenant);
  return state !== null && !state.disabled && (id === undefined || state.id === id);
}
