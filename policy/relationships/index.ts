/**
 * policy/relationships/: the Zanzibar/SpiceDB-style relationship engine — per-tenant schemas with caveats, validated
 * tuples in the policy database's relationships concern, checks with explain, listing filters, lookups, audited
 * writes and a watch feed.
 */

export { Relationships, s3ParentOf, type RelationshipsOptions } from './relationships.ts';
export { RelationshipEngine, type CheckResult, type CheckOptions, type RequestContext, type ImplicitParents, type EngineOptions, type EvalState } from './engine.ts';
export { RelationshipStore, type GuardedWrite } from './store-bulk.ts';
export type { TupleReader, SnapshotReader } from './store-reads.ts';
export {
  type AuditContext,
  type TupleUpdate,
  type TupleFilter,
  type Precondition,
  type WriteOptions,
  type ChangeEvent,
  type RelationshipAuditRecord,
  type ImportSource,
} from './store-types.ts';
export { appWriteGuard, dependents, guardRefusal, grantReaches, resourceLocation, type AppScope, type ResourceLocation } from './guard.ts';
export { compileSchema, DEFAULT_OBJECT_SCHEMA, type CompiledSchema } from './schema.ts';
export { schemaDiff, permissionReach, type SchemaDiff, type PermissionDiff, type PermissionReach } from './schema-diff.ts';
export { caveatHash, REQUEST_CONTEXT_PARAMS } from './caveats.ts';
export { BACKUP_FORMATS, formatBackup, parseBackup, type BackupFormat, type ParsedBackup } from './backup.ts';
export { expand, subjectLabel, type FoundSubject, type SubjectSet } from './expand.ts';
export { formatValidationReport, runValidationFile, runValidationPath, type ValidationFailure, type ValidationReport, type ValidationOptions } from './validation.ts';
export {
  parseTuple,
  expiresAt,
  formatTuple,
  formatSpiceDbTuple,
  normalizeExpiration,
  tupleFromJson,
  tupleToJson,
  parseSubject,
  formatSubject,
  escapeId,
  unescapeId,
  type Tuple,
  type ObjectRef,
  type SubjectRef,
  type CaveatRef,
} from './tuples.ts';
export { encodeRevision, decodeRevision } from './store-schema.ts';
export { SchemaValidationError, SchemaConflictError, TupleValidationError, PreconditionFailedError, ImportError } from './errors.ts';
