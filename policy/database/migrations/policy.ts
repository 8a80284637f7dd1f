/**
 * The policy concern's schema changes, in order: tenants, credentials, buckets, STS roles, providers and signing
 * keys, capability root keys, revocations and mints, the revision counter, the audit log and the access records. An
 * entry, once released, is never edited, only followed by a new one. SQLite deployments ran entries 1-3 before PostgreSQL was supported, so
 * PostgreSQL's entry 1 creates at once what SQLite's first three did, and its entries 2 and 3 are empty.
 */
import { ROOT_TENANT } from '../../store-schema.ts';
import type { Migration } from '../migrate.ts';

/** The policy concern's migrations. */
export const POLICY_MIGRATIONS: readonly Migration[] = [
  // 1: tenants, credentials and bucket ownership (PostgreSQL: everything SQLite's entries 1-3 made).
  {
    sqlite: `CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
       INSERT INTO meta (key, value) VALUES ('revision', 0);
       CREATE TABLE tenants (
         name TEXT PRIMARY KEY,
         description TEXT NOT NULL DEFAULT '',
         disabled INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL
       ) STRICT;
       INSERT INTO tenants (name, description, created_at) VALUES ('${ROOT_TENANT}', 'system tenant of the root credential', unixepoch() * 1000);
       CREATE TABLE credentials (
         access_key_id TEXT PRIMARY KEY,
         tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         description TEXT NOT NULL DEFAULT '',
         is_root INTEGER NOT NULL DEFAULT 0,
         scopes TEXT NOT NULL,
         secret_ct BLOB NOT NULL, secret_iv BLOB NOT NULL, secret_tag BLOB NOT NULL,
         prev_ct BLOB, prev_iv BLOB, prev_tag BLOB, prev_until INTEGER,
         expires_at INTEGER,
         created_at INTEGER NOT NULL,
         rotated_at INTEGER,
         last_used_at INTEGER,
         revoked_at INTEGER
       ) STRICT;
       CREATE INDEX credentials_tenant ON credentials (tenant);
       CREATE TABLE buckets (
         name TEXT PRIMARY KEY,
         tenant TEXT NOT NULL REFERENCES tenants(name),
         assigned_at INTEGER NOT NULL
       ) STRICT;
       CREATE INDEX buckets_tenant ON buckets (tenant);`,
    postgres: `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
       CREATE TABLE tenants (
         name TEXT COLLATE "C" PRIMARY KEY,
         id TEXT NOT NULL UNIQUE,
         description TEXT NOT NULL DEFAULT '',
         disabled INTEGER NOT NULL DEFAULT 0,
         created_at BIGINT NOT NULL
       );
       INSERT INTO tenants (name, id, description, created_at)
         VALUES ('${ROOT_TENANT}', md5(random()::text || clock_timestamp()::text), 'system tenant of the root credential', (extract(epoch from now()) * 1000)::bigint);
       CREATE TABLE credentials (
         access_key_id TEXT COLLATE "C" PRIMARY KEY,
         tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         description TEXT NOT NULL DEFAULT '',
         is_root INTEGER NOT NULL DEFAULT 0,
         scopes TEXT NOT NULL,
         secret_ct BYTEA NOT NULL, secret_iv BYTEA NOT NULL, secret_tag BYTEA NOT NULL,
         prev_ct BYTEA, prev_iv BYTEA, prev_tag BYTEA, prev_until BIGINT,
         expires_at BIGINT,
         created_at BIGINT NOT NULL,
         rotated_at BIGINT,
         last_used_at BIGINT,
         revoked_at BIGINT,
         created_by TEXT
       );
       CREATE INDEX credentials_tenant ON credentials (tenant);
       CREATE TABLE buckets (
         name TEXT COLLATE "C" PRIMARY KEY,
         tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(name),
         assigned_at BIGINT NOT NULL,
         governed INTEGER NOT NULL DEFAULT 0
       );
       CREATE INDEX buckets_tenant ON buckets (tenant);
       CREATE TABLE sts_roles (
         id TEXT NOT NULL UNIQUE, tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, description TEXT NOT NULL DEFAULT '',
         scopes TEXT NOT NULL, max_duration_s INTEGER NOT NULL, trust TEXT,
         created_at BIGINT NOT NULL, created_by TEXT, PRIMARY KEY (tenant, name)
       );
       CREATE TABLE sts_oidc_providers (
         id TEXT PRIMARY KEY, tenant TEXT COLLATE "C" NOT NULL, issuer TEXT COLLATE "C" NOT NULL, audience TEXT NOT NULL, jwks TEXT NOT NULL,
         algorithms TEXT NOT NULL, roles TEXT NOT NULL, role_ids TEXT NOT NULL DEFAULT '[]', created_at BIGINT NOT NULL, created_by TEXT,
         UNIQUE (tenant, issuer)
       );
       CREATE TABLE sts_signing_keys (
         kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
         private_ct BYTEA NOT NULL, private_iv BYTEA NOT NULL, private_tag BYTEA NOT NULL,
         created_at BIGINT NOT NULL, retire_at BIGINT
       );
       CREATE TABLE capability_root_keys (
         tenant TEXT PRIMARY KEY,
         generation INTEGER NOT NULL,
         key_ct BYTEA NOT NULL, key_iv BYTEA NOT NULL, key_tag BYTEA NOT NULL,
         created_at BIGINT NOT NULL
       );
       CREATE TABLE capability_revocations (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, revoked_at BIGINT NOT NULL);
       CREATE TABLE capability_mints (
         id TEXT PRIMARY KEY, tenant TEXT NOT NULL, tenant_id TEXT NOT NULL, scope TEXT NOT NULL, actions TEXT,
         minted_by TEXT, created_at BIGINT NOT NULL
       );
       CREATE INDEX capability_mints_tenant ON capability_mints (tenant);`,
  },
  // 2: buckets whose object access relationships govern as well as scopes.
  {
    sqlite: `ALTER TABLE buckets ADD COLUMN governed INTEGER NOT NULL DEFAULT 0;`,
    postgres: '',
  },
  // 3: authority never grows. Tenants and roles get immutable ids (a re-created name is a new thing); every
  // delegation records its maker (NULL: root or the operator), whose authority bounds it at every use; the session
  // and capability tables join the numbered migrations; capabilities are recorded when minted. Providers made
  // before this name roles by name only and are left with no role ids: they fail closed until re-registered.
  {
    sqlite: `ALTER TABLE tenants ADD COLUMN id TEXT;
       UPDATE tenants SET id = lower(hex(randomblob(12)));
       CREATE UNIQUE INDEX tenants_id ON tenants (id);
       ALTER TABLE credentials ADD COLUMN created_by TEXT;
       CREATE TABLE IF NOT EXISTS sts_roles (
         tenant TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
         scopes TEXT NOT NULL, max_duration_s INTEGER NOT NULL, trust TEXT,
         created_at INTEGER NOT NULL, PRIMARY KEY (tenant, name)
       ) STRICT;
       ALTER TABLE sts_roles ADD COLUMN id TEXT;
       ALTER TABLE sts_roles ADD COLUMN created_by TEXT;
       UPDATE sts_roles SET id = 'role-' || lower(hex(randomblob(12)));
       CREATE UNIQUE INDEX sts_roles_id ON sts_roles (id);
       CREATE TABLE IF NOT EXISTS sts_oidc_providers (
         id TEXT PRIMARY KEY, tenant TEXT NOT NULL, issuer TEXT NOT NULL, audience TEXT NOT NULL, jwks TEXT NOT NULL,
         algorithms TEXT NOT NULL, roles TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (tenant, issuer)
       ) STRICT;
       ALTER TABLE sts_oidc_providers ADD COLUMN role_ids TEXT NOT NULL DEFAULT '[]';
       ALTER TABLE sts_oidc_providers ADD COLUMN created_by TEXT;
       CREATE TABLE IF NOT EXISTS sts_signing_keys (
         kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
         private_ct BLOB NOT NULL, private_iv BLOB NOT NULL, private_tag BLOB NOT NULL,
         created_at INTEGER NOT NULL, retire_at INTEGER
       ) STRICT;
       CREATE TABLE IF NOT EXISTS capability_root_keys (
         tenant TEXT PRIMARY KEY,
         generation INTEGER NOT NULL,
         key_ct BLOB NOT NULL, key_iv BLOB NOT NULL, key_tag BLOB NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT;
       CREATE TABLE IF NOT EXISTS capability_revocations (
         id TEXT PRIMARY KEY,
         tenant TEXT NOT NULL,
         revoked_at INTEGER NOT NULL
       ) STRICT;
       CREATE TABLE capability_mints (
         id TEXT PRIMARY KEY,
         tenant TEXT NOT NULL,
         tenant_id TEXT NOT NULL,
         scope TEXT NOT NULL,
         actions TEXT,
         minted_by TEXT,
         created_at INTEGER NOT NULL
       ) STRICT;
       CREATE INDEX capability_mints_tenant ON capability_mints (tenant);`,
    postgres: '',
  },
  // 4: the revision counter gets its own table (so `meta` holds text only, in both dialects), a master key reference,
  // and the audit log moves from dataDir/audit.log into the database, written in the transaction of the change it
  // records so every node's changes are one query away.
  {
    sqlite: `CREATE TABLE revisions (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      INSERT INTO revisions (name, value) SELECT 'policy', value FROM meta WHERE key = 'revision';
      DELETE FROM meta WHERE key = 'revision';
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        tenant TEXT, access_key_id TEXT, bucket TEXT, details TEXT, node TEXT
      ) STRICT;
      CREATE INDEX audit_log_time ON audit_log (time);
      CREATE INDEX audit_log_tenant ON audit_log (tenant, time);
      CREATE INDEX audit_log_access_key ON audit_log (access_key_id, time);
      CREATE INDEX audit_log_action ON audit_log (action, time);`,
    postgres: `CREATE TABLE revisions (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
      INSERT INTO revisions (name, value) VALUES ('policy', 0);
      CREATE TABLE audit_log (
        id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        tenant TEXT COLLATE "C", access_key_id TEXT COLLATE "C", bucket TEXT, details TEXT, node TEXT
      );
      CREATE INDEX audit_log_time ON audit_log (time);
      CREATE INDEX audit_log_tenant ON audit_log (tenant, time);
      CREATE INDEX audit_log_access_key ON audit_log (access_key_id, time);
      CREATE INDEX audit_log_action ON audit_log (action, time);`,
  },
  // 5: access records — which families each application credential used, from which addresses and agents, per day
  // (the access audit's evidence). Releases before the policy database made this table in policy.db themselves,
  // hence IF NOT EXISTS: their records carry over.
  {
    sqlite: `CREATE TABLE IF NOT EXISTS credential_uses (
        access_key_id TEXT NOT NULL, day INTEGER NOT NULL, family TEXT NOT NULL, remote_address TEXT NOT NULL, user_agent TEXT NOT NULL,
        PRIMARY KEY (access_key_id, day, family, remote_address, user_agent)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS credential_uses_day ON credential_uses (day);`,
    postgres: `CREATE TABLE credential_uses (
        access_key_id TEXT COLLATE "C" NOT NULL, day INTEGER NOT NULL, family TEXT NOT NULL, remote_address TEXT NOT NULL, user_agent TEXT NOT NULL,
        PRIMARY KEY (access_key_id, day, family, remote_address, user_agent)
      );
      CREATE INDEX credential_uses_day ON credential_uses (day);`,
  },
  // 6: console sign-outs — a signed-out session's id until the session would have expired, so a copied cookie is
  // refused on every node after its sign-out (session tokens are otherwise stateless); rows are purged once expired.
  {
    sqlite: `CREATE TABLE console_signouts (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT, WITHOUT ROWID;
      CREATE INDEX console_signouts_expiry ON console_signouts (expires_at);`,
    postgres: `CREATE TABLE console_signouts (id TEXT COLLATE "C" PRIMARY KEY, expires_at BIGINT NOT NULL);
      CREATE INDEX console_signouts_expiry ON console_signouts (expires_at);`,
  },
];
