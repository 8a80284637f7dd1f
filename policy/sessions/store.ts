/**
 * What temporary credentials are built from, in dataDir/policy.db: roles (a named scope set of a tenant with a
 * duration limit and an optional trust list), OpenID Connect providers per tenant, and the gateway's token-signing
 * key pairs (ES256, by kid), whose private halves and session-secret seeds are sealed with the master key.
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { AuditLog } from '../audit-log.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import { invalidGrantReason, normalizeGrant } from '../scopes.ts';
import { checkJwksUrl, type JwksPolicy } from './jwks.ts';
import { loadMasterKey, open, seal } from '../secret-box.ts';
import type { ScopeGrant } from '../types.ts';
import { openPolicyDatabase, tenantIdOf } from './database.ts';

/** Shortest and longest session a role may allow, as AWS STS bounds them. */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;

/** The signing algorithm of session tokens. */
export const SESSION_TOKEN_ALG = 'ES256';

/** Algorithms an OIDC provider may be configured with: asymmetric only, so a shared secret can never sign. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** A role: what sessions assuming it may do at most, and for how long. */
export interface RoleInfo {
  /** Immutable: a role deleted and created again under the same name is a new role, and old sessions stay dead. */
  id: string;
  tenant: string;
  name: string;
  arn: string;
  description: string;
  scopes: ScopeGrant[];
  maxDurationSeconds: number;
  /** Who may assume it: subjects (`app:AKIA…`, `user:alice`, `user:*`) or access key ids; absent means any of the tenant. */
  trust?: string[];
  createdAt: string;
  /** The application credential that made (or last replaced) the role; its authority bounds the role at every use. */
  createdBy?: string;
}

/** A trusted OpenID Connect issuer of a tenant. */
export interface OidcProviderInfo {
  id: string;
  tenant: string;
  issuer: string;
  audience: string;
  /** A JWKS file path or an https URL. */
  jwks: string;
  algorithms: string[];
  /** Names of the roles of the tenant its tokens may assume (those that still exist). */
  roles: string[];
  /** The same roles by immutable id: a role re-created under an old name is not trusted. */
  roleIds: string[];
  createdAt: string;
  /** The application credential that registered it; its authority bounds the provider's sessions at every use. */
  createdBy?: string;
}

/** A signing key as the verifier needs it. */
export interface SigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateJwk: JWK;
  /** Session secrets are HMAC(seed, token id): every process derives them, none stores them. */
  seed: Buffer;
  retireAt?: number;
}

/** The ARN of a role: `arn:aws:iam::<tenant>:role/<name>`. */
export function roleArn(tenant: string, name: string): string {
  return `arn:aws:iam::${tenant}:role/${name}`;
}

/** Tenant and role name from an ARN, or undefined when it is none. */
export function parseRoleArn(arn: string): { tenant: string; name: string } | undefined {
  const m = /^arn:aws:iam::([a-z0-9][a-z0-9._-]{0,62}):role\/([A-Za-z0-9+=,.@_-]{1,64})$/.exec(arn);
  return m ? { tenant: m[1]!, name: m[2]! } : undefined;
}

const ROLE_NAME = /^[A-Za-z0-9+=,.@_-]{1,64}$/;
const iso = (ms: number) => new Date(ms).toISOString();

interface RoleRow { id: string; tenant: string; name: string; description: string; scopes: string; max_duration_s: number; trust: string | null; created_at: number; created_by: string | null }
interface ProviderRow { id: string; tenant: string; issuer: string; audience: string; jwks: string; algorithms: string; roles: string; role_ids: string; created_at: number; created_by: string | null }
interface KeyRow { kid: string; alg: string; public_jwk: string; private_ct: Buffer; private_iv: Buffer; private_tag: Buffer; created_at: number; retire_at: number | null }

function roleInfo(r: RoleRow): RoleInfo {
  return {
    id: r.id, tenant: r.tenant, name: r.name, arn: roleArn(r.tenant, r.name), description: r.description,
    scopes: JSON.parse(r.scopes) as ScopeGrant[], maxDurationSeconds: r.max_duration_s,
    ...(r.trust !== null ? { trust: JSON.parse(r.trust) as string[] } : {}), createdAt: iso(r.created_at),
    ...(r.created_by !== null ? { createdBy: r.created_by } : {}),
  };
}

/** A JWKS URL as logs and errors may show it: no user info, query or fragment (they may hold credentials). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search || u.hash ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

/** Roles, OIDC providers and signing keys. */
export class SessionStore {
  private readonly dataVersion: Database.Statement;
  /** Own writes, which PRAGMA data_version does not count. */
  private writes = 0;

  private constructor(
    private readonly db: Database.Database,
    private readonly masterKey: Buffer,
    private readonly audit: AuditLog | undefined,
    /** Where JWKS may be fetched from (checked when a provider is added and again before every fetch). */
    readonly jwksPolicy: JwksPolicy,
  ) {
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  /** Opens the session tables (created by the policy store's migrations) of a data directory. */
  static open(options: { dataDir: string; masterKey?: string | Buffer; audit?: AuditLog; jwks?: JwksPolicy }): SessionStore {
    const policy = options.jwks ?? { allowInsecure: false };
    return new SessionStore(openPolicyDatabase(options.dataDir, ''), loadMasterKey(options.dataDir, options.masterKey), options.audit, policy);
  }

  close(): void {
    this.db.close();
  }

  /** The underlying connection, for the tenant check sessions make on every request. */
  get database(): Database.Database {
    return this.db;
  }

  /** The immutable id of the tenant that has this name now, or undefined. */
  tenantId(name: string): string | undefined {
    return tenantIdOf(this.db, name);
  }

  /** Changes whenever this or another connection commits; caches compare it to know when to reload. */
  changeMarker(): string {
    return `${this.dataVersion.get() as number}:${this.writes}`;
  }

  private record(action: string, tenant: string | undefined, actor: string | undefined, details: Record<string, unknown>): void {
    this.writes++;
    this.audit?.write({ actor: actor ?? 'operator', action, tenant, details });
  }

  // ── roles ──────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates (or with `replace`, redefines) a role. `maker` is the application credential doing it (absent for root
   * and the operator): the role never allows more than its maker can at the moment it is used. A replaced role keeps
   * its id, so its live sessions are narrowed (or widened back, within their own tokens) on their next request.
   */
  putRole(r: { tenant: string; name: string; description?: string; scopes: ScopeGrant[]; maxDurationSeconds?: number; trust?: string[]; replace?: boolean; actor?: string; maker?: string }): RoleInfo {
    if (!ROLE_NAME.test(r.name)) throw new InvalidInputError('role name must be 1-64 letters, digits or +=,.@_-');
    const invalid = invalidGrantReason(r.scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    const max = r.maxDurationSeconds ?? 3600;
    if (!Number.isInteger(max) || max < MIN_SESSION_SECONDS || max > MAX_SESSION_SECONDS) {
      throw new InvalidInputError(`maxDurationSeconds must be an integer from ${MIN_SESSION_SECONDS} to ${MAX_SESSION_SECONDS}`);
    }
    if (r.trust !== undefined && (!Array.isArray(r.trust) || r.trust.some((t) => typeof t !== 'string' || t === ''))) {
      throw new InvalidInputError('trust must be a list of subjects or access key ids');
    }
    if (this.db.prepare('SELECT 1 FROM tenants WHERE name = ?').get(r.tenant) === undefined) throw new NotFoundError(`no tenant ${r.tenant}`);
    const scopes = r.scopes.map(normalizeGrant);
    const row = [r.description ?? '', JSON.stringify(scopes), max, r.trust ? JSON.stringify(r.trust) : null, r.maker ?? null] as const;
    this.db.transaction(() => {
      const existing = this.role(r.tenant, r.name);
      if (existing !== undefined && !r.replace) throw new ConflictError(`role ${r.name} exists in tenant ${r.tenant}`);
      if (existing !== undefined) {
        this.db.prepare('UPDATE sts_roles SET description = ?, scopes = ?, max_duration_s = ?, trust = ?, created_by = ? WHERE id = ?').run(...row, existing.id);
      } else {
        this.db
          .prepare('INSERT INTO sts_roles (id, tenant, name, description, scopes, max_duration_s, trust, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(`role-${randomBytes(12).toString('hex')}`, r.tenant, r.name, ...row, Date.now());
      }
    }).immediate();
    this.record('role.put', r.tenant, r.actor, { name: r.name, scopes, maxDurationSeconds: max, trust: r.trust });
    return this.role(r.tenant, r.name)!;
  }

  /** One role by tenant and name, or undefined. */
  role(tenant: string, name: string): RoleInfo | undefined {
    const row = this.db.prepare('SELECT * FROM sts_roles WHERE tenant = ? AND name = ?').get(tenant, name) as RoleRow | undefined;
    return row ? roleInfo(row) : undefined;
  }

  /** One role by its immutable id, or undefined. */
  roleById(id: string): RoleInfo | undefined {
    const row = this.db.prepare('SELECT * FROM sts_roles WHERE id = ?').get(id) as RoleRow | undefined;
    return row ? roleInfo(row) : undefined;
  }

  /** Every role, or those of one tenant. */
  listRoles(filter: { tenant?: string } = {}): RoleInfo[] {
    const rows = (filter.tenant === undefined
      ? this.db.prepare('SELECT * FROM sts_roles ORDER BY tenant, name').all()
      : this.db.prepare('SELECT * FROM sts_roles WHERE tenant = ? ORDER BY name').all(filter.tenant)) as RoleRow[];
    return rows.map(roleInfo);
  }

  /** Deletes a role; its sessions end on their next request, and a role re-created under its name does not revive them. */
  deleteRole(tenant: string, name: string, options: { actor?: string } = {}): void {
    const { changes } = this.db.prepare('DELETE FROM sts_roles WHERE tenant = ? AND name = ?').run(tenant, name);
    if (changes === 0) throw new NotFoundError(`no role ${name} in tenant ${tenant}`);
    this.record('role.delete', tenant, options.actor, { name });
  }

  // ── OIDC providers ─────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Adds a trusted issuer to a tenant for some of its roles (which must exist; they are recorded by id). `maker` as
   * for putRole. The JWKS location must satisfy the store's JwksPolicy (https to a public host unless the operator
   * allowed otherwise); only root may name a file, which the caller decides.
   */
  addOidcProvider(p: { tenant: string; issuer: string; audience: string; jwks: string; algorithms?: string[]; roles: string[]; actor?: string; maker?: string }): OidcProviderInfo {
    if (this.db.prepare('SELECT 1 FROM tenants WHERE name = ?').get(p.tenant) === undefined) throw new NotFoundError(`no tenant ${p.tenant}`);
    if (!p.issuer || !p.audience || !p.jwks) throw new InvalidInputError('issuer, audience and jwks are required');
    if (/^[a-z][a-z0-9+.-]*:/i.test(p.jwks)) checkJwksUrl(p.jwks, this.jwksPolicy);
    const algorithms = p.algorithms ?? ['RS256', 'ES256'];
    const bad = algorithms.find((a) => !(OIDC_ALGORITHMS as readonly string[]).includes(a));
    if (bad !== undefined || algorithms.length === 0) throw new InvalidInputError(`algorithms must be some of ${OIDC_ALGORITHMS.join(', ')}`);
    if (!Array.isArray(p.roles) || p.roles.length === 0 || p.roles.some((r) => !ROLE_NAME.test(r))) {
      throw new InvalidInputError('roles must name at least one role of the tenant');
    }
    const roles = p.roles.map((name) => this.role(p.tenant, name));
    const missing = p.roles.filter((_, i) => roles[i] === undefined);
    if (missing.length > 0) throw new InvalidInputError(`no role ${missing.join(', ')} in tenant ${p.tenant}`);
    const roleIds = roles.map((r) => r!.id);
    const id = `oidc-${randomBytes(6).toString('hex')}`;
    try {
      this.db
        .prepare('INSERT INTO sts_oidc_providers (id, tenant, issuer, audience, jwks, algorithms, roles, role_ids, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, p.tenant, p.issuer, p.audience, p.jwks, JSON.stringify(algorithms), JSON.stringify(p.roles), JSON.stringify(roleIds), p.maker ?? null, Date.now());
    } catch (error) {
      if (String((error as { code?: string }).code).startsWith('SQLITE_CONSTRAINT')) throw new ConflictError(`tenant ${p.tenant} already trusts issuer ${p.issuer}`);
      throw error;
    }
    const jwks = /^[a-z][a-z0-9+.-]*:/i.test(p.jwks) ? redactUrl(p.jwks) : p.jwks;
    this.record('oidc.add', p.tenant, p.actor, { id, issuer: p.issuer, audience: p.audience, jwks, algorithms, roles: p.roles });
    return this.oidcProvider(id)!;
  }

  private providerInfo(r: ProviderRow): OidcProviderInfo {
    const roleIds = JSON.parse(r.role_ids) as string[];
    const roles = roleIds.map((id) => this.roleById(id)).filter((role) => role !== undefined).map((role) => role.name);
    return {
      id: r.id, tenant: r.tenant, issuer: r.issuer, audience: r.audience, jwks: r.jwks,
      algorithms: JSON.parse(r.algorithms) as string[], roles, roleIds, createdAt: iso(r.created_at),
      ...(r.created_by !== null ? { createdBy: r.created_by } : {}),
    };
  }

  /** One provider by id, or undefined. */
  oidcProvider(id: string): OidcProviderInfo | undefined {
    const row = this.db.prepare('SELECT * FROM sts_oidc_providers WHERE id = ?').get(id) as ProviderRow | undefined;
    return row ? this.providerInfo(row) : undefined;
  }

  /** The providers of a tenant trusting `issuer`. */
  oidcProvidersFor(tenant: string, issuer: string): OidcProviderInfo[] {
    return (this.db.prepare('SELECT * FROM sts_oidc_providers WHERE tenant = ? AND issuer = ?').all(tenant, issuer) as ProviderRow[]).map((r) => this.providerInfo(r));
  }

  /** Every provider, or those of one tenant. */
  listOidcProviders(filter: { tenant?: string } = {}): OidcProviderInfo[] {
    const rows = (filter.tenant === undefined
      ? this.db.prepare('SELECT * FROM sts_oidc_providers ORDER BY tenant, issuer').all()
      : this.db.prepare('SELECT * FROM sts_oidc_providers WHERE tenant = ? ORDER BY issuer').all(filter.tenant)) as ProviderRow[];
    return rows.map((r) => this.providerInfo(r));
  }

  /** Removes a provider; sessions it vouched for end on their next request. */
  deleteOidcProvider(id: string, options: { actor?: string } = {}): OidcProviderInfo {
    const info = this.oidcProvider(id);
    if (info === undefined) throw new NotFoundError(`no OIDC provider ${id}`);
    this.db.prepare('DELETE FROM sts_oidc_providers WHERE id = ?').run(id);
    this.record('oidc.delete', info.tenant, options.actor, { id });
    return info;
  }

  // ── signing keys ───────────────────────────────────────────────────────────────────────────────────────────────

  private keyOf(row: KeyRow): SigningKey {
    const secret = JSON.parse(open(this.masterKey, { ciphertext: row.private_ct, iv: row.private_iv, tag: row.private_tag }, `sts-key:${row.kid}`)) as { jwk: JWK; seed: string };
    return {
      kid: row.kid, alg: row.alg, publicJwk: JSON.parse(row.public_jwk) as JWK, privateJwk: secret.jwk,
      seed: Buffer.from(secret.seed, 'base64'), ...(row.retire_at !== null ? { retireAt: row.retire_at } : {}),
    };
  }

  /** A signing key by kid while it still verifies, or undefined. */
  signingKey(kid: string, now = Date.now()): SigningKey | undefined {
    const row = this.db.prepare('SELECT * FROM sts_signing_keys WHERE kid = ? AND (retire_at IS NULL OR retire_at > ?)').get(kid, now) as KeyRow | undefined;
    return row ? this.keyOf(row) : undefined;
  }

  /** The key new tokens are signed with (the newest not retiring), generated on first use. */
  async activeSigningKey(): Promise<SigningKey> {
    const current = this.db.prepare('SELECT * FROM sts_signing_keys WHERE retire_at IS NULL ORDER BY created_at DESC LIMIT 1').get() as KeyRow | undefined;
    if (current) return this.keyOf(current);
    await this.rotateSigningKey({ actor: 'system' });
    return this.activeSigningKey();
  }

  /** Public keys that still verify, as a JWKS document. */
  publicKeys(now = Date.now()): { keys: JWK[] } {
    const rows = this.db.prepare('SELECT public_jwk FROM sts_signing_keys WHERE retire_at IS NULL OR retire_at > ? ORDER BY created_at DESC').all(now) as { public_jwk: string }[];
    return { keys: rows.map((r) => JSON.parse(r.public_jwk) as JWK) };
  }

  /**
   * Starts signing with a new key pair. Earlier keys keep verifying for `graceSeconds` (default: the longest
   * session, so no session is cut short); 0 retires them now, which ends every session they signed.
   */
  async rotateSigningKey(options: { graceSeconds?: number; actor?: string } = {}): Promise<{ kid: string; retiring: string[] }> {
    const grace = options.graceSeconds ?? MAX_SESSION_SECONDS;
    if (!Number.isInteger(grace) || grace < 0) throw new InvalidInputError('graceSeconds must be a non-negative integer');
    const { publicKey, privateKey } = await generateKeyPair(SESSION_TOKEN_ALG, { extractable: true });
    const kid = `${new Date().toISOString().slice(0, 10)}-${randomBytes(6).toString('hex')}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SESSION_TOKEN_ALG, use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SESSION_TOKEN_ALG };
    const sealed = seal(this.masterKey, JSON.stringify({ jwk: privateJwk, seed: randomBytes(32).toString('base64') }), `sts-key:${kid}`);
    const now = Date.now();
    const retiring = this.db.transaction(() => {
      const old = this.db.prepare('SELECT kid FROM sts_signing_keys WHERE retire_at IS NULL').pluck().all() as string[];
      this.db.prepare('UPDATE sts_signing_keys SET retire_at = ? WHERE retire_at IS NULL OR retire_at > ?').run(now + grace * 1000, now + grace * 1000);
      this.db
        .prepare('INSERT INTO sts_signing_keys (kid, alg, public_jwk, private_ct, private_iv, private_tag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(kid, SESSION_TOKEN_ALG, JSON.stringify(publicJwk), sealed.ciphertext, sealed.iv, sealed.tag, now);
      return old;
    }).immediate();
    this.record('sts.key.rotate', undefined, options.actor, { kid, retiring, graceSeconds: grace });
    return { kid, retiring };
  }
}
