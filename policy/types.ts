/**
 * Shared vocabulary of policy/: who is asking (Principal), what they may do (ScopeGrant over API families), and what
 * was decided (Decision). Pure types; the gateway maps requests onto them and knows nothing of how they are stored.
 */

/** API families a scope grant can name. Every S3 operation maps to exactly one of these in gateway/routes.ts. */
export const FAMILIES = [
  'object:read',
  'object:write',
  'object:delete',
  'object:list',
  'bucket:read',
  'bucket:admin',
  'tuples:read',
  'tuples:write',
  'check',
  'watch',
  'admin',
] as const;

/** One API family. */
export type Family = (typeof FAMILIES)[number];

/** A grant: these families on this bucket (or every bucket of the tenant, `*`), optionally under a key prefix. */
export interface ScopeGrant {
  families: Family[];
  bucket: string;
  /** Key prefix the grant is limited to; absent or empty means the whole bucket. */
  prefix?: string;
  /** The grant names exactly one key (`prefix` is the whole key): share links for one object. */
  exact?: boolean;
  /** With tuples:write: the resource types (namespaces) an application may write tuples of; absent means any. */
  namespaces?: string[];
  /** With tuples:write: the relations an application may write; absent means any. */
  relations?: string[];
}

/** The layers a request passes, in order; a denial names the one that refused it. */
export type DenialLayer =
  | 'signature'
  | 'credential'
  | 'scope'
  | 'tenant'
  | 'reserved_namespace'
  | 'relationship'
  | 'caveat'
  | 'capability';

/** An authenticated caller. */
export interface Principal {
  tenant: string;
  accessKeyId: string;
  /** The subject relationship checks use, e.g. `user:amy` or `app:<accessKeyId>`. */
  subject: string;
  /** The bootstrap root credential: all families on all buckets of all tenants (the reserved prefix still applies). */
  isRoot: boolean;
  scopes: ScopeGrant[];
  /**
   * For a capability: the principal that minted it, as it stands now (undefined when unknown or no longer valid). In
   * governed buckets the capability acts for it: its scopes and relationships are re-checked on every use.
   */
  minter?: Principal;
  /**
   * For a web-identity session whose OpenID Connect provider was registered by a principal without tenant-wide
   * authority: that registrar as it stands now. Its issuer could name any subject, so every relationship decision
   * (object permissions in governed buckets, the tuple write guard) must allow for the registrar's subject as well.
   */
  registrar?: Principal;
  /**
   * For a credential made by a principal without tenant-wide authority (and for its sessions): the subjects of every
   * such maker up its chain, nearest first, as the chain stands now. A maker may have lost tuples since it made this
   * credential, so every relationship decision (object permissions in governed buckets, listings, the tuple write
   * guard) must hold for each of them as well. Absent when every maker is root, the operator or tenant-wide.
   */
  boundingMakers?: readonly string[];
}

/** The outcome of one authorization question. */
export type Decision = { allowed: true } | { allowed: false; layer: DenialLayer; reason: string };

/** One line of the denial log. Never holds a secret or a signature. */
export interface DenialRecord {
  time: string;
  requestId: string;
  tenant?: string;
  accessKeyId?: string;
  subject?: string;
  action: string;
  bucket?: string;
  key?: string;
  copySource?: string;
  layer: DenialLayer;
  reason: string;
  remoteAddress?: string;
  userAgent?: string;
  /** The gateway node that refused the request. */
  node?: string;
}
