/**
 * policy/: who may do what — tenants, credentials, token scopes, the reserved prefix, and the denial and audit logs.
 * Pure decisions over its own stores, in one policy database (SQLite or PostgreSQL, policy/database/); knows nothing
 * of HTTP and never imports gateway/ or storage/.
 */

export * from './types.ts';
export { PolicyError, NotFoundError, ConflictError, InvalidInputError, MasterKeyMismatchError, MasterKeyFileError, DeniedError, isPolicyUnavailable } from './errors.ts';
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
  relationshipBounds,
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
export { PolicyStore, nodeMasterKey, type PolicyStoreOptions, type Actor, type CreatedCredential, type RootResult, type RotatedCredential } from './store.ts';
export { ROOT_TENANT, masterKeyReference, verifyMasterKey, type TenantInfo, type CredentialInfo, type CredentialStatus } from './store-schema.ts';
export * from './database/index.ts';
export type { ResolveResult, CredentialFailure } from './credential-cache.ts';
export { MASTER_KEY_FILE, parseMasterKey } from './secret-box.ts';
export { appSubject, webIdentitySubject, MAX_SUBJECT_ID } from './subjects.ts';
export {
  DenialLog,
  FLUSH_MS,
  queryDenials,
  followDenials,
  purgeDenials,
  sanitizeDenial,
  SHOWN_AS,
  type DenialFilter,
  type DenialLogOptions,
} from './denial-log.ts';
export { scrubSecrets, scrubStrings, scrubLogLine, type ScrubKind } from './scrub.ts';
export { queryAudit, followAudit, purgeAudit, appendAudit, type AuditRecord, type AuditFilter } from './audit-log.ts';
export { FOLLOW_OVERLAP_MS, type LogFilter } from './log-query.ts';
export { ConsoleSessions, MAX_SESSION_MS, type ConsoleSession, type IssuedSession } from './console-sessions.ts';
export { ConsoleSignOuts } from './console-signouts.ts';
export { AccessRecords, RETENTION_DAYS, type CredentialUse, type CredentialUsage } from './access-records.ts';
export * from './sessions/index.ts';
export * from './capabilities/index.ts';
export * as relationships from './relationships/index.ts';
export * as audit from './audit/index.ts';
export {
  actorLabel,
  actorsOf,
  checkActors,
  lookupActors,
  subjectStanding,
  type ActorAnswer,
  type RelationshipActor,
  type StandingSources,
  type SubjectStanding,
} from './actors.ts';
export { tupleWriteScope, tuplesBeyondWriters, type TupleBeyondWriter } from './tuple-writers.ts';
