/**
 * What temporary credentials are built from, in the policy database: roles (a named scope set of a tenant with a
 * duration limit and an optional trust list), OpenID Connect providers per tenant, and the gateway's token-signing
 * key pairs (ES256, by kid), whose private halves and session-secret seeds are sealed with the master key. Every node
 * reads the same keys, so a session issued by one node verifies on all. Reads a request makes are cached until the
 * policy revision moves; every write is an audited policy change that moves it.
 */
import type { Kysely } from 'kysely';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PolicyDatabase } from '../database/policy-database.ts';
import { RevisionCache } from '../database/revision-cache.ts';
import type { PolicyTables } from '../database/tables.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import { invalidGrantReason, normalizeGrant } from '../scopes.ts';
import { commitPolicy, type Change, type PolicyTransaction } from '../store-base.ts';
import { checkJwksUrl, type JwksPolicy } from './jwks.ts';
import { open, seal } from '../secret-box.ts';
import type { ScopeGrant } from '../types.ts';
import { tenantEnabled, tenantState, type TenantState } from './database.ts';

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
  private readonly db: Kysely<PolicyTables>;
  private readonly roles: RevisionCache<RoleRow | null>;
  private readonly providers: RevisionCache<ProviderRow | null>;
  private readonly keys: RevisionCache<KeyRow | null>;
  private readonly tenants: RevisionCache<TenantState>;

  private constructor(
    private readonly database: PolicyDatabase,
    private readonly masterKey: Buffer,
    /** Where JWKS may be fetched from (checked when a provider is added and again before every fetch). */
    readonly jwksPolicy: JwksPolicy,
  ) {
    this.db = database.db('policy');
    const signal = database.signals.policy;
    this.roles = new RevisionCache(signal);
    this.providers = new RevisionCache(signal);
    this.keys = new RevisionCache(signal, 100);
    this.tenants = new RevisionCache(signal);
  }

  /** The session tables of an open policy database, with the master key the policy store verified. */
  static open(options: { database: PolicyDatabase; masterKey: Buffer; jwks?: JwksPolicy }): SessionStore {
    return new SessionStore(options.database, options.masterKey, options.jwks ?? { allowInsecure: false });
  }

  /** The immutable id of the tenant that has this name now, or undefined. */
  async tenantId(name: string): Promise<string | undefined> {
    return (await tenantState(this.tenants, this.db, name))?.id;
  }

  /** Whether the tenant exists and is enabled (and, with `id`, is still the tenant of that id); cached. */
  tenantEnabled(tenant: string, id?: string): Promise<boolean> {
    return tenantEnabled(this.tenants, this.db, tenant, id);
  }

  private change<T>(change: Change, fn: (trx: PolicyTransaction) => Promise<T>): Promise<T> {
    return commitPolicy(this.database, async (trx) => ({ result: await fn(trx), change }));
  }

  private async requireTenant(trx: PolicyTransaction, tenant: string): Promise<void> {
    if ((await trx.selectFrom('tenants').select('name').where('name', '=', tenant).executeTakeFirst()) === undefined) throw new NotFoundError(`no tenant ${tenant}`);
  }

  // ── roles ──────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates (or with `replace`, redefines) a role. `maker` is the application credential doing it (absent for root
   * and the operator): the role never allows more than its maker can at the moment it is used. A replaced role keeps
   * its id, so its live sessions are narrowed (or widened back, within their own tokens) on their next request.
   */
  async putRole(r: { tenant: string; name: string; description?: string; scopes: ScopeGrant[]; maxDurationSeconds?: number; trust?: string[]; replace?: boolean; actor?: string; maker?: string }): Promise<RoleInfo> {
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
    const scopes = r.scopes.map(normalizeGrant);
    const row = { description: r.description ?? '', scopes: JSON.stringify(scopes), max_duration_s: max, trust: r.trust ? JSON.stringify(r.trust) : null, created_by: r.maker ?? null };
    const details = { name: r.name, scopes, maxDurationSeconds: max, trust: r.trust };
    await this.change({ actor: r.actor, action: 'role.put', tenant: r.tenant, details }, async (trx) => {
      await this.requireTenant(trx, r.tenant);
      const existing = await trx.selectFrom('sts_roles').select('id').where('tenant', '=', r.tenant).where('name', '=', r.name).executeTakeFirst();
      if (existing !== undefined && !r.replace) throw new ConflictError(`role ${r.name} exists in tenant ${r.tenant}`);
      if (existing !== undefined) await trx.updateTable('sts_roles').set(row).where('id', '=', existing.id).execute();
      else await trx.insertInto('sts_roles').values({ id: `role-${randomBytes(12).toString('hex')}`, tenant: r.tenant, name: r.name, ...row, created_at: Date.now() }).execute();
    });
    return (await this.role(r.tenant, r.name))!;
  }

  /** One role by tenant and name, or undefined. */
  async role(tenant: string, name: string): Promise<RoleInfo | undefined> {
    const row = await this.roles.get(`name\u0000${tenant}\u0000${name}`, async () =>
      ((await this.db.selectFrom('sts_roles').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst()) as RoleRow | undefined) ?? null,
    );
    return row ? roleInfo(row) : undefined;
  }

  /** One role by its immutable id, or undefined. */
  async roleById(id: string): Promise<RoleInfo | undefined> {
    const row = await this.roles.get(`id\u0000${id}`, async () => ((await this.db.selectFrom('sts_roles').selectAll().where('id', '=', id).executeTakeFirst()) as RoleRow | undefined) ?? null);
    return row ? roleInfo(row) : undefined;
  }

  /** Every role, or those of one tenant. */
  async listRoles(filter: { tenant?: string } = {}): Promise<RoleInfo[]> {
    const q = this.db.selectFrom('sts_roles').selectAll();
    const rows = (await (filter.tenant === undefined ? q.orderBy('tenant').orderBy('name') : q.where('tenant', '=', filter.tenant).orderBy('name')).execute()) as RoleRow[];
    return rows.map(roleInfo);
  }

  /** Deletes a role; its sessions end on their next request, and a role re-created under its name does not revive them. */
  async deleteRole(tenant: string, name: string, options: { actor?: string } = {}): Promise<void> {
    await this.change({ actor: options.actor, action: 'role.delete', tenant, details: { name } }, async (trx) => {
      const { numDeletedRows } = await trx.deleteFrom('sts_roles').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
      if (Number(numDeletedRows) === 0) throw new NotFoundError(`no role ${name} in tenant ${tenant}`);
    });
  }

  // ── OIDC providers ─────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Adds a trusted issuer to a tenant for some of its roles (which must exist; they are recorded by id). `maker` as
   * for putRole. The JWKS location must satisfy the store's JwksPolicy (https to a public host unless the operator
   * allowed otherwise); only root may name a file, which the caller decides.
   */
  async addOidcProvider(p: { tenant: string; issuer: string; audience: string; jwks: string; algorithms?: string[]; roles: string[]; actor?: string; maker?: string }): Promise<OidcProviderInfo> {
    if ((await this.tenantId(p.tenant)) === undefined) throw new NotFoundError(`no tenant ${p.tenant}`);
    if (!p.issuer || !p.audience || !p.jwks) throw new InvalidInputError('issuer, audience and jwks are required');
    if (/^[a-z][a-z0-9+.-]*:/i.test(p.jwks)) checkJwksUrl(p.jwks, this.jwksPolicy);
    const algorithms = p.algorithms ?? ['RS256', 'ES256'];
    const bad = algorithms.find((a) => !(OIDC_ALGORITHMS as readonly string[]).includes(a));
    if (bad !== undefined || algorithms.length === 0) throw new InvalidInputError(`algorithms must be some of ${OIDC_ALGORITHMS.join(', ')}`);
    if (!Array.isArray(p.roles) || p.roles.length === 0 || p.roles.some((r) => !ROLE_NAME.test(r))) {
      throw new InvalidInputError('roles must name at least one role of the tenant');
    }
    const roles = await Promise.all(p.roles.map((name) => this.role(p.tenant, name)));
    const missing = p.roles.filter((_, i) => roles[i] === undefined);
    if (missing.length > 0) throw new InvalidInputError(`no role ${missing.join(', ')} in tenant ${p.tenant}`);
    const roleIds = roles.map((r) => r!.id);
    const id = `oidc-${randomBytes(6).toString('hex')}`;
    const jwks = /^[a-z][a-z0-9+.-]*:/i.test(p.jwks) ? redactUrl(p.jwks) : p.jwks;
    const details = { id, issuer: p.issuer, audience: p.audience, jwks, algorithms, roles: p.roles };
    try {
      await this.change({ actor: p.actor, action: 'oidc.add', tenant: p.tenant, details }, (trx) =>
        trx
          .insertInto('sts_oidc_providers')
          .values({
            id, tenant: p.tenant, issuer: p.issuer, audience: p.audience, jwks: p.jwks, algorithms: JSON.stringify(algorithms),
            roles: JSON.stringify(p.roles), role_ids: JSON.stringify(roleIds), created_by: p.maker ?? null, created_at: Date.now(),
          })
          .execute(),
      );
    } catch (error) {
      if (this.database.isUniqueViolation(error)) throw new ConflictError(`tenant ${p.tenant} already trusts issuer ${p.issuer}`);
      throw error;
    }
    return (await this.oidcProvider(id))!;
  }

  private async providerInfo(r: ProviderRow): Promise<OidcProviderInfo> {
    const roleIds = JSON.parse(r.role_ids) as string[];
    const roles = (await Promise.all(roleIds.map((id) => this.roleById(id)))).filter((role) => role !== undefined).map((role) => role.name);
    return {
      id: r.id, tenant: r.tenant, issuer: r.issuer, audience: r.audience, jwks: r.jwks,
      algorithms: JSON.parse(r.algorithms) as string[], roles, roleIds, createdAt: iso(r.created_at),
      ...(r.created_by !== null ? { createdBy: r.created_by } : {}),
    };
  }

  /** One provider by id, or undefined. */
  async oidcProvider(id: string): Promise<OidcProviderInfo | undefined> {
    const row = await this.providers.get(id, async () => ((await this.db.selectFrom('sts_oidc_providers').selectAll().where('id', '=', id).executeTakeFirst()) as ProviderRow | undefined) ?? null);
    return row ? this.providerInfo(row) : undefined;
  }

  /** The providers of a tenant trusting `issuer`. */
  async oidcProvidersFor(tenant: string, issuer: string): Promise<OidcProviderInfo[]> {
    const rows = (await this.db.selectFrom('sts_oidc_providers').selectAll().where('tenant', '=', tenant).where('issuer', '=', issuer).execute()) as ProviderRow[];
    return Promise.all(rows.map((r) => this.providerInfo(r)));
  }

  /** Every provider, or those of one tenant. */
  async listOidcProviders(filter: { tenant?: string } = {}): Promise<OidcProviderInfo[]> {
    const q = this.db.selectFrom('sts_oidc_providers').selectAll();
    const rows = (await (filter.tenant === undefined ? q.orderBy('tenant').orderBy('issuer') : q.where('tenant', '=', filter.tenant).orderBy('issuer')).execute()) as ProviderRow[];
    return Promise.all(rows.map((r) => this.providerInfo(r)));
  }

  /** Removes a provider; sessions it vouched for end on their next request. */
  async deleteOidcProvider(id: string, options: { actor?: string } = {}): Promise<OidcProviderInfo> {
    const info = await this.oidcProvider(id);
    if (info === undefined) throw new NotFoundError(`no OIDC provider ${id}`);
    await this.change({ actor: options.actor, action: 'oidc.delete', tenant: info.tenant, details: { id } }, (trx) =>
      trx.deleteFrom('sts_oidc_providers').where('id', '=', id).execute(),
    );
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
  async signingKey(kid: string, now = Date.now()): Promise<SigningKey | undefined> {
    const row = await this.keys.get(kid, async () => ((await this.db.selectFrom('sts_signing_keys').selectAll().where('kid', '=', kid).executeTakeFirst()) as KeyRow | undefined) ?? null);
    return row && (row.retire_at === null || row.retire_at > now) ? this.keyOf(row) : undefined;
  }

  /** The key new tokens are signed with (the newest not retiring), generated on first use. */
  async activeSigningKey(): Promise<SigningKey> {
    const current = await this.db.selectFrom('sts_signing_keys').selectAll().where('retire_at', 'is', null).orderBy('created_at', 'desc').limit(1).executeTakeFirst();
    if (current) return this.keyOf(current as KeyRow);
    await this.rotateSigningKey({ actor: 'system', onlyIfNone: true });
    return this.activeSigningKey();
  }

  /** Public keys that still verify, as a JWKS document. */
  async publicKeys(now = Date.now()): Promise<{ keys: JWK[] }> {
    const rows = await this.db
      .selectFrom('sts_signing_keys')
      .select('public_jwk')
      .where((eb) => eb.or([eb('retire_at', 'is', null), eb('retire_at', '>', now)]))
      .orderBy('created_at', 'desc')
      .execute();
    return { keys: rows.map((r) => JSON.parse(r.public_jwk) as JWK) };
  }

  /**
   * Starts signing with a new key pair. Earlier keys keep verifying for `graceSeconds` (default: the longest
   * session, so no session is cut short); 0 retires them now, which ends every session they signed. With
   * `onlyIfNone`, nothing happens when another node made an active key meanwhile (first use on several nodes at once).
   */
  async rotateSigningKey(options: { graceSeconds?: number; actor?: string; onlyIfNone?: boolean } = {}): Promise<{ kid: string; retiring: string[] }> {
    const grace = options.graceSeconds ?? MAX_SESSION_SECONDS;
    if (!Number.isInteger(grace) || grace < 0) throw new InvalidInputError('graceSeconds must be a non-negative integer');
    const { publicKey, privateKey } = await generateKeyPair(SESSION_TOKEN_ALG, { extractable: true });
    const kid = `${new Date().toISOString().slice(0, 10)}-${randomBytes(6).toString('hex')}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SESSION_TOKEN_ALG, use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SESSION_TOKEN_ALG };
    const sealed = seal(this.masterKey, JSON.stringify({ jwk: privateJwk, seed: randomBytes(32).toString('base64') }), `sts-key:${kid}`);
    const now = Date.now();
    return commitPolicy(this.database, async (trx) => {
      const old = (await trx.selectFrom('sts_signing_keys').select('kid').where('retire_at', 'is', null).execute()).map((r) => r.kid);
      if (options.onlyIfNone && old.length > 0) return { result: { kid: old[0]!, retiring: [] } };
      const until = now + grace * 1000;
      await trx.updateTable('sts_signing_keys').set({ retire_at: until }).where((eb) => eb.or([eb('retire_at', 'is', null), eb('retire_at', '>', until)])).execute();
      await trx
        .insertInto('sts_signing_keys')
        .values({ kid, alg: SESSION_TOKEN_ALG, public_jwk: JSON.stringify(publicJwk), private_ct: sealed.ciphertext, private_iv: sealed.iv, private_tag: sealed.tag, created_at: now, retire_at: null })
        .execute();
      return { result: { kid, retiring: old }, change: { actor: options.actor, action: 'sts.key.rotate', details: { kid, retiring: old, graceSeconds: grace } } };
    });
  }
}
