/**
 * The relationships concern's schema changes, in order: per-tenant revisions, schemas, tuples (keyed for forward
 * lookup, resource to subjects, with a reverse index, subject to resources), the changelog and import records, then
 * expiry, then the revision counter's own table. An entry, once released, is never edited. SQLite deployments ran
 * entries 1-2 first, so PostgreSQL's entry 1 creates at once what SQLite's two did. In PostgreSQL every key column
 * collates as "C" (byte order), as SQLite's do, so key ranges and sort orders agree between the two.
 */
import type { Migration } from '../migrate.ts';

/** The relationships concern's migrations. */
export const RELATIONSHIP_MIGRATIONS: readonly Migration[] = [
  // 1: schemas, tuples, the changelog and import sources (PostgreSQL: with expiry, SQLite's entry 2).
  {
    sqlite: `CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
       INSERT INTO meta (key, value) VALUES ('revision', 0);
       CREATE TABLE tenant_revisions (
         tenant TEXT PRIMARY KEY,
         revision INTEGER NOT NULL,
         schema_revision INTEGER NOT NULL DEFAULT 0
       ) STRICT;
       CREATE TABLE schemas (
         tenant TEXT NOT NULL,
         revision INTEGER NOT NULL,
         text TEXT NOT NULL,
         actor TEXT NOT NULL,
         written_at INTEGER NOT NULL,
         PRIMARY KEY (tenant, revision)
       ) STRICT;
       CREATE TABLE tuples (
         tenant TEXT NOT NULL,
         resource_type TEXT NOT NULL,
         resource_id TEXT NOT NULL,
         relation TEXT NOT NULL,
         subject_relation TEXT NOT NULL,
         subject_type TEXT NOT NULL,
         subject_id TEXT NOT NULL,
         caveat_name TEXT,
         caveat_hash TEXT,
         caveat_context TEXT,
         created_revision INTEGER NOT NULL,
         PRIMARY KEY (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id)
       ) STRICT, WITHOUT ROWID;
       CREATE INDEX tuples_reverse ON tuples (tenant, subject_type, subject_id, subject_relation, resource_type, relation);
       CREATE TABLE changelog (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         tenant TEXT NOT NULL,
         revision INTEGER NOT NULL,
         kind TEXT NOT NULL,
         tuple TEXT,
         caveat_name TEXT,
         caveat_hash TEXT,
         details TEXT,
         request_id TEXT,
         actor TEXT NOT NULL,
         reason TEXT NOT NULL,
         at INTEGER NOT NULL
       ) STRICT;
       CREATE INDEX changelog_tenant ON changelog (tenant, revision, seq);
       CREATE TABLE import_sources (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         tenant TEXT NOT NULL,
         revision INTEGER NOT NULL,
         name TEXT NOT NULL,
         digest TEXT NOT NULL,
         count INTEGER NOT NULL,
         actor TEXT NOT NULL,
         reason TEXT NOT NULL,
         request_id TEXT,
         at INTEGER NOT NULL
       ) STRICT;
       CREATE INDEX import_sources_tenant ON import_sources (tenant, id);`,
    postgres: `CREATE TABLE tenant_revisions (
         tenant TEXT COLLATE "C" PRIMARY KEY,
         revision BIGINT NOT NULL,
         schema_revision BIGINT NOT NULL DEFAULT 0
       );
       CREATE TABLE schemas (
         tenant TEXT COLLATE "C" NOT NULL,
         revision BIGINT NOT NULL,
         text TEXT NOT NULL,
         actor TEXT NOT NULL,
         written_at BIGINT NOT NULL,
         PRIMARY KEY (tenant, revision)
       );
       CREATE TABLE tuples (
         tenant TEXT COLLATE "C" NOT NULL,
         resource_type TEXT COLLATE "C" NOT NULL,
         resource_id TEXT COLLATE "C" NOT NULL,
         relation TEXT COLLATE "C" NOT NULL,
         subject_relation TEXT COLLATE "C" NOT NULL,
         subject_type TEXT COLLATE "C" NOT NULL,
         subject_id TEXT COLLATE "C" NOT NULL,
         caveat_name TEXT,
         caveat_hash TEXT,
         caveat_context TEXT,
         created_revision BIGINT NOT NULL,
         expires_at BIGINT,
         PRIMARY KEY (tenant, resource_type, resource_id, relation, subject_relation, subject_type, subject_id)
       );
       CREATE INDEX tuples_reverse ON tuples (tenant, subject_type, subject_id, subject_relation, resource_type, relation);
       CREATE INDEX tuples_expiry ON tuples (expires_at) WHERE expires_at IS NOT NULL;
       CREATE TABLE changelog (
         seq BIGSERIAL PRIMARY KEY,
         tenant TEXT COLLATE "C" NOT NULL,
         revision BIGINT NOT NULL,
         kind TEXT NOT NULL,
         tuple TEXT,
         caveat_name TEXT,
         caveat_hash TEXT,
         details TEXT,
         request_id TEXT,
         actor TEXT NOT NULL,
         reason TEXT NOT NULL,
         at BIGINT NOT NULL
       );
       CREATE INDEX changelog_tenant ON changelog (tenant, revision, seq);
       CREATE TABLE import_sources (
         id BIGSERIAL PRIMARY KEY,
         tenant TEXT COLLATE "C" NOT NULL,
         revision BIGINT NOT NULL,
         name TEXT NOT NULL,
         digest TEXT NOT NULL,
         count INTEGER NOT NULL,
         actor TEXT NOT NULL,
         reason TEXT NOT NULL,
         request_id TEXT,
         at BIGINT NOT NULL
       );
       CREATE INDEX import_sources_tenant ON import_sources (tenant, id);`,
  },
  // Relationship expiration (SpiceDB's OptionalExpiresAt): epoch milliseconds, NULL for never; a plain column.
  {
    sqlite: `ALTER TABLE tuples ADD COLUMN expires_at INTEGER;
       CREATE INDEX tuples_expiry ON tuples (expires_at) WHERE expires_at IS NOT NULL;`,
    postgres: '',
  },
  // 3: the revision counter gets its own table, as in the policy concern, so `meta` is gone.
  {
    sqlite: `CREATE TABLE revisions (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      INSERT INTO revisions (name, value) SELECT 'relationships', value FROM meta WHERE key = 'revision';
      DROP TABLE meta;`,
    postgres: `CREATE TABLE revisions (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
      INSERT INTO revisions (name, value) VALUES ('relationships', 0);`,
  },
];
