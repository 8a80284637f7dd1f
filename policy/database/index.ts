/**
 * policy/database/: where policy lives — one query layer (Kysely) over SQLite or PostgreSQL, versioned migrations,
 * the per-concern write lock and revision, and the change signals every node's caches follow.
 */
export { PolicyDatabase, POSTGRES_SCHEMAS, SQLITE_FILES, type PolicyDatabaseOptions, type ChangeOutcome } from './policy-database.ts';
export { isPostgresUrl, redactUrl as redactDatabaseUrl, type DialectName } from './dialects.ts';
export { CONSISTENCY_BOUND_MS, FRESH_MS, HEARTBEAT_MS, CHANGE_CHANNEL, type ChangeSignal, type ChannelState } from './signals.ts';
export { SchemaTooNewError } from './migrate.ts';
export { CONCERNS, type Concern } from './tables.ts';
export { copyPolicy, type CopyCounts } from './copy.ts';
