/**
 * The session and capability stores that sit beside a PolicyStore, opened once per policy store by whoever opens
 * it (the composition root, the CLI's local mode) and found again by admin handlers, which only see the PolicyStore.
 */
import { AuditLog, CapabilityStore, SessionStore, SessionTokens, type PolicyStore } from '../../policy/index.ts';

/** Everything temporary credentials and capabilities need. */
export interface TokenStores {
  sessions: SessionStore;
  tokens: SessionTokens;
  capabilities: CapabilityStore;
}

const attached = new WeakMap<PolicyStore, TokenStores>();

/** Opens the stores on the policy store's data directory (with the same master key) and attaches them to it. */
export function openTokenStores(options: { policy: PolicyStore; dataDir: string; masterKey?: string | Buffer; allowInsecureJwks?: boolean }): TokenStores {
  const existing = attached.get(options.policy);
  if (existing) return existing;
  const audit = new AuditLog({ dataDir: options.dataDir });
  const jwks = { allowInsecure: options.allowInsecureJwks ?? false };
  const sessions = SessionStore.open({ dataDir: options.dataDir, masterKey: options.masterKey, audit, jwks });
  const capabilities = CapabilityStore.open({ dataDir: options.dataDir, masterKey: options.masterKey, audit });
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

/** Closes and detaches the stores of a policy store, if any. */
export function closeTokenStores(policy: PolicyStore): void {
  const stores = attached.get(policy);
  if (!stores) return;
  attached.delete(policy);
  stores.sessions.close();
  stores.capabilities.close();
}
