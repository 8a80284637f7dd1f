/**
 * policy/: who may do what — tenants, credentials, token scopes, the reserved prefix, and the denial and audit logs.
 * Pure decisions over its own store; knows nothing of HTTP and never imports gateway/ or storage/.
 */

export * from './types.ts';
export { PolicyError, NotFoundError, ConflictError, InvalidInputError, MasterKeyMismatchError, DeniedError } from './errors.ts';
export { RESERVED_PREFIX, RESERVED_NAME, isReservedKey, listPrefixTouchesReserved } from './reserved.ts';
export {
  KEY_FAMILIES,
  authorize,
  assertAllowed,
  grantCovers,
  listingPlan,
  keyVisible,
  prefixVisible,
  visibleBuckets,
  grantWithin,
  holdsTenantWide,
  TENANT_WIDE,
  normalizeGrant,
  formatGrant,
  intersectGrant,
  boundedBy,
  authorizeCredentialAdmin,
  authorizeTenantAdmin,
  invalidGrantReason,
  type AccessRequest,
  type ListingPlan,
} from './scopes.ts';
export { PolicyStore, type PolicyStoreOptions, type Actor, type CreatedCredential, type RootResult, type RotatedCredential } from './store.ts';
export { ROOT_TENANT, type TenantInfo, type CredentialInfo, type CredentialStatus } from './store-schema.ts';
export type { ResolveResult, CredentialFailure } from './credential-cache.ts';
export { MASTER_KEY_FILE, parseMasterKey } from './secret-box.ts';
export { appSubject, webIdentitySubject, MAX_SUBJECT_ID } from './subjects.ts';
export {
  DenialLog,
  DENIAL_LOG_FILE,
  queryDenials,
  followDenials,
  sanitizeDenial,
  scrubSecrets,
  denialMatches,
  type DenialFilter,
  type DenialLogOptions,
} from './denial-log.ts';
export { ConsoleSessions, MAX_SESSION_MS, type ConsoleSession, type IssuedSession } from './console-sessions.ts';
export { AccessRecords, RETENTION_DAYS, type CredentialUse, type CredentialUsage } from './access-records.ts';
export { AuditLog, AUDIT_LOG_FILE, queryAudit, followAudit, type AuditRecord, type AuditFilter } from './audit-log.ts';
export * from './sessions/index.ts';
export * from './capabilities/index.ts';
export * as relationships from './relationships/index.ts';
export * as audit from './audit/index.ts';
