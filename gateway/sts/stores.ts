/**
 * The session and capability stores that sit beside a PolicyStore, opened once per policy store by whoever opens
 * it (the composition root, the CLI's local mode) and found again by admin handlers, which only see the PolicyStore.
 * They share its policy database and master key.
 */
import { CapabilityStore, SessionStore, SessionTokens, type PolicyStore } from '../../policy/index.ts';

/** Everything temporary credentials and capabilities need. */
export interface TokenStores {
  sessions: SessionStore;
  tokens: SessionTokens;
  capabilities: CapabilityStore;
}

const attached = new WeakMap<PolicyStore, TokenStores>();

/** Opens the stores on the policy store's database (with the same master key) and attaches them to it. */
export function openTokenStores(options: { policy: PolicyStore; allowInsecureJwks?: boolean }): TokenStores {
  const existing = attached.get(options.policy);
  if (existing) return existing;
  const { database, masterKey } = options.policy;
  const jwks = { allowInsecure: options.allowInsecureJwks ?? false };
  const sessions = SessionStore.open({ database, masterKey, jwks });
  const capabilities = CapabilityStore.open({ database, masterKey });
  const stores = { sessions, tokens: new SessionTokens(sessions, options.policy), capabilities };
  attached.set(options.policy, stores);
  return stores;
}

/** The stores attached to a policy store; throws when none were opened (a wiring mistake). */
export function tokenStoresOf(policy: PolicyStore): TokenStores {
  const stores = attached.get(policy);
  if (!stores) throw new Error('token stores were not opened for this policy store');
  return stores;
}

/** Detaches the stores of a policy store (they hold nothing of their own to close). */
export function closeTokenStores(policy: PolicyStore): void {
  attached.delete(policy);
}
