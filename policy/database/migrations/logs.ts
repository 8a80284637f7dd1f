/**
 * The logs concern's schema changes: the denial log, one row per refused request from every node, indexed by time
 * and by tenant, access key and layer within time, so `anvil denials` and the admin API answer in one query. An entry,
 * once released, is never edited.
 */
import type { Migration } from '../migrate.ts';

/** The logs concern's migrations. */
export const LOG_MIGRATIONS: readonly Migration[] = [
  // 1: the denial log.
  {
    sqlite: `CREATE TABLE denials (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, request_id TEXT NOT NULL,
        tenant TEXT, access_key_id TEXT, subject TEXT, action TEXT NOT NULL, bucket TEXT, key TEXT, copy_source TEXT,
        layer TEXT NOT NULL, reason TEXT NOT NULL, remote_address TEXT, user_agent TEXT, node TEXT
      ) STRICT;
      CREATE INDEX denials_time ON denials (time);
      CREATE INDEX denials_tenant ON denials (tenant, time);
      CREATE INDEX denials_access_key ON denials (access_key_id, time);
      CREATE INDEX denials_layer ON denials (layer, time);`,
    postgres: `CREATE TABLE denials (
        id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL, request_id TEXT NOT NULL,
        tenant TEXT COLLATE "C", access_key_id TEXT COLLATE "C", subject TEXT, action TEXT NOT NULL, bucket TEXT COLLATE "C",
        key TEXT COLLATE "C", copy_source TEXT, layer TEXT NOT NULL, reason TEXT NOT NULL, remote_address TEXT,
        user_agent TEXT, node TEXT
      );
      CREATE INDEX denials_time ON denials (time);
      CREATE INDEX denials_tenant ON denials (tenant, time);
      CREATE INDEX denials_access_key ON denials (access_key_id, time);
      CREATE INDEX denials_layer ON denials (layer, time);`,
  },
];
