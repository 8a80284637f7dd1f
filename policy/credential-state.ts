/**
 * Whether a credential can be used: the one rule the per-request cache (credential-cache.ts) and the credential
 * listings (store.ts) both apply, so an inventory never shows as active a key that every request refuses. A
 * credential works while it is not revoked, its tenant is not disabled, its maker chain holds (every maker up to a
 * root or the operator is present, unrevoked, in an enabled tenant, of the same tenant) and neither it nor a maker
 * has expired.
 */
import type { PolicyTables } from './database/tables.ts';

/** Why an access key cannot be used. Deleted credentials are 'unknown'; 'maker_gone' when its maker cannot be used. */
export type CredentialFailure = 'unknown' | 'revoked' | 'expired' | 'tenant_disabled' | 'maker_gone';

/** Longest maker chain followed; a longer one (impossible through the API) fails closed. */
export const MAX_MAKER_DEPTH = 32;

/** A credential's own state with what its maker chain passes down. */
export interface CredentialState {
  tenant: string;
  revoked: boolean;
  /** Its tenant is disabled or locked down. */
  tenantDisabled: boolean;
  /** A maker up the chain is revoked, deleted, in a disabled tenant or of another tenant (or the chain is too long). */
  makerGone: boolean;
  /** Epoch milliseconds when it stops working, on its own or with a maker (Infinity: never). */
  expiresAt: number;
}

/** The fields of a credentials row the rule reads, with its tenant's disabled flag (0: enabled). */
export type StateRow = Pick<PolicyTables['credentials'], 'access_key_id' | 'tenant' | 'revoked_at' | 'expires_at' | 'created_by'> & { tenant_disabled: number };

/**
 * The state of `row` given its maker's: `maker` is false when the row names a maker that cannot be read (deleted,
 * or the chain is too long), and ignored when the row names none.
 */
export function credentialState(row: StateRow, maker: CredentialState | false): CredentialState {
  const hasMaker = row.created_by !== null;
  const gone = hasMaker && (maker === false || maker.revoked || maker.makerGone || maker.tenantDisabled || maker.tenant !== row.tenant);
  const makerExpires = hasMaker && !gone && maker !== false ? maker.expiresAt : Number.POSITIVE_INFINITY;
  return {
    tenant: row.tenant,
    revoked: row.revoked_at !== null,
    tenantDisabled: row.tenant_disabled !== 0,
    makerGone: gone,
    expiresAt: Math.min(row.expires_at ?? Number.POSITIVE_INFINITY, makerExpires),
  };
}

/** Why a credential in `state` cannot be used at `nowMs`, in the order requests report it; undefined when it can. */
export function credentialFailure(state: CredentialState, nowMs: number): Exclude<CredentialFailure, 'unknown'> | undefined {
  if (state.revoked) return 'revoked';
  if (state.tenantDisabled) return 'tenant_disabled';
  if (state.makerGone) return 'maker_gone';
  if (state.expiresAt <= nowMs) return 'expired';
  return undefined;
}

/**
 * The states of `rows`, each maker chain followed through `find` (rows at hand first, then `find`; undefined: no
 * such credential), every credential read once.
 */
export async function credentialStates(rows: StateRow[], find: (accessKeyId: string) => Promise<StateRow | undefined>): Promise<Map<string, CredentialState>> {
  const byId = new Map(rows.map((r) => [r.access_key_id, r]));
  const states = new Map<string, CredentialState>();
  const stateOf = async (row: StateRow, depth: number): Promise<CredentialState> => {
    const known = states.get(row.access_key_id);
    if (known) return known;
    let maker: CredentialState | false = false;
    if (row.created_by !== null && row.created_by !== row.access_key_id && depth < MAX_MAKER_DEPTH) {
      const makerRow = byId.get(row.created_by) ?? (await find(row.created_by));
      if (makerRow) {
        byId.set(makerRow.access_key_id, makerRow);
        maker = await stateOf(makerRow, depth + 1);
      }
    }
    const state = credentialState(row, maker);
    states.set(row.access_key_id, state);
    return state;
  };
  for (const row of rows) await stateOf(row, 0);
  return states;
}
