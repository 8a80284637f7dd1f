/**
 * The policy database's tables as the query layer (Kysely) sees them, one interface per concern. Times are epoch
 * milliseconds; flags are 0/1 integers; scopes, lists and details are JSON text; secrets are AES-256-GCM ciphertext,
 * iv and tag columns, never plaintext. The same shapes hold in SQLite and PostgreSQL (migrations/*.ts).
 */
import type { Generated } from 'kysely';

/** The concerns, each its own SQLite file or PostgreSQL schema, with its own revision counter and write lock. */
export const CONCERNS = ['policy', 'relationships', 'logs'] as const;

/** One concern. */
export type Concern = (typeof CONCERNS)[number];

/** A concern's change counter: bumped by one under the concern's write lock for every change. */
export interface RevisionsTable {
  name: string;
  value: number;
}

/** Key/value settings of the database itself (the master key check marker and reference). */
export interface MetaTable {
  key: string;
  value: string;
}

/** The tables of the policy concern: tenants, credentials, buckets, STS, capabilities, the audit log and access records. */
export interface PolicyTables {
  revisions: RevisionsTable;
  meta: MetaTable;
  tenants: { name: string; id: string; description: string; disabled: number; created_at: number };
  credentials: {
    access_key_id: string;
    tenant: string;
    name: string;
    description: string;
    is_root: number;
    scopes: string;
    secret_ct: Buffer;
    secret_iv: Buffer;
    secret_tag: Buffer;
    prev_ct: Buffer | null;
    prev_iv: Buffer | null;
    prev_tag: Buffer | null;
    prev_until: number | null;
    expires_at: number | null;
    created_at: number;
    rotated_at: number | null;
    last_used_at: number | null;
    revoked_at: number | null;
    created_by: string | null;
  };
  buckets: { name: string; tenant: string; assigned_at: number; governed: number };
  sts_roles: {
    id: string;
    tenant: string;
    name: string;
    description: string;
    scopes: string;
    max_duration_s: number;
    trust: string | null;
    created_at: number;
    created_by: string | null;
  };
  sts_oidc_providers: {
    id: string;
    tenant: string;
    issuer: string;
    audience: string;
    jwks: string;
    algorithms: string;
    roles: string;
    role_ids: string;
    created_at: number;
    created_by: string | null;
  };
  sts_signing_keys: {
    kid: string;
    alg: string;
    public_jwk: string;
    private_ct: Buffer;
    private_iv: Buffer;
    private_tag: Buffer;
    created_at: number;
    retire_at: number | null;
  };
  capability_root_keys: { tenant: string; generation: number; key_ct: Buffer; key_iv: Buffer; key_tag: Buffer; created_at: number };
  capability_revocations: { id: string; tenant: string; revoked_at: number };
  capability_mints: { id: string; tenant: string; tenant_id: string; scope: string; actions: string | null; minted_by: string | null; created_at: number };
  credential_uses: { access_key_id: string; day: number; family: string; remote_address: string; user_agent: string };
  /** Console sessions signed out before they expired (policy/console-sessions.ts), kept until `expires_at` (epoch ms). */
  console_signouts: { id: string; expires_at: number };
  audit_log: {
    id: Generated<number>;
    time: number;
    actor: string;
    action: string;
    tenant: string | null;
    access_key_id: string | null;
    bucket: string | null;
    details: string | null;
    node: string | null;
  };
}

/** A tuples row. */
export interface TuplesTable {
  tenant: string;
  resource_type: string;
  resource_id: string;
  relation: string;
  subject_relation: string;
  subject_type: string;
  subject_id: string;
  caveat_name: string | null;
  caveat_hash: string | null;
  caveat_context: string | null;
  created_revision: number;
  expires_at: number | null;
}

/** The tables of the relationships concern: schemas, tuples, the changelog and import records. */
export interface RelationshipTables {
  revisions: RevisionsTable;
  tenant_revisions: { tenant: string; revision: number; schema_revision: number };
  schemas: { tenant: string; revision: number; text: string; actor: string; written_at: number };
  tuples: TuplesTable;
  changelog: {
    seq: Generated<number>;
    tenant: string;
    revision: number;
    kind: string;
    tuple: string | null;
    caveat_name: string | null;
    caveat_hash: string | null;
    details: string | null;
    request_id: string | null;
    actor: string;
    reason: string;
    at: number;
  };
  import_sources: {
    id: Generated<number>;
    tenant: string;
    revision: number;
    name: string;
    digest: string;
    count: number;
    actor: string;
    reason: string;
    request_id: string | null;
    at: number;
  };
}

/** The tables of the logs concern: the denial log. */
export interface LogTables {
  denials: {
    id: Generated<number>;
    time: number;
    request_id: string;
    tenant: string | null;
    access_key_id: string | null;
    subject: string | null;
    action: string;
    bucket: string | null;
    key: string | null;
    copy_source: string | null;
    layer: string;
    reason: string;
    remote_address: string | null;
    user_agent: string | null;
    node: string | null;
  };
}

/** The tables of each concern. */
export interface ConcernTables {
  policy: PolicyTables;
  relationships: RelationshipTables;
  logs: LogTables;
}
