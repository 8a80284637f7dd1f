/**
 * Session tokens: JWTs signed by the gateway (ES256, kid in the header, public keys published as JWKS) carrying
 * tenant, subject, the temporary access key id, scopes, the role and the parent, and never a secret. The session's
 * secret key is HMAC-SHA256(seed of the signing key, token id), so any process holding the sealed key material
 * derives it, and retiring the signing key retires the secret with it. Every request re-checks the parent: an
 * application credential must still resolve, and the very secret that signed the AssumeRole must still be one of its
 * valid secrets (a revoke, expiry or disabled tenant ends the session, and so does a rotation, at once or when its
 * grace ends), a web identity's provider and the role must still exist.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { PolicyStore } from '../store.ts';
import type { Principal, ScopeGrant } from '../types.ts';
import { boundedBy, holdsTenantWide } from '../scopes.ts';
import { intersectScopes, sessionScopes } from './scopes.ts';
import { SESSION_TOKEN_ALG, type RoleInfo, type SessionStore, type SigningKey } from './store.ts';

/** Who a session descends from: an application credential (with a fingerprint of its secret) or an OIDC provider. */
export type SessionParent = { kind: 'credential'; id: string; fp: string } | { kind: 'oidc'; id: string };

/** The verified claims of a session token. */
export interface SessionClaims {
  tenant: string;
  /** The tenant's immutable id: a tenant deleted and created again under the same name ends every session. */
  tenantId: string;
  subject: string;
  accessKeyId: string;
  scopes: ScopeGrant[];
  role: { tenant: string; name: string };
  /** Immutable ids of every role along the chain (AssumeRole with session credentials appends): each bounds it now. */
  roleIds: string[];
  parent: SessionParent;
  sessionName: string;
  expiresAt: Date;
}

/** Temporary credentials as STS hands them out. */
export interface IssuedSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** Why a session cannot be used. */
export type SessionFailure =
  | 'malformed'
  | 'unknown_signing_key'
  | 'bad_signature'
  | 'expired'
  | 'access_key_mismatch'
  | 'parent_revoked'
  | 'parent_rotated'
  | 'provider_removed'
  | 'role_removed'
  | 'maker_gone'
  | 'tenant_disabled';

/** The answer of resolve: the secret and Principal of a session, or why not. */
export type SessionResolution =
  | { ok: true; secrets: string[]; principal: Principal; claims: SessionClaims }
  | { ok: false; reason: SessionFailure; detail?: string };

const ISSUER = 'anvil-sts';
const AUDIENCE = 'anvil-gateway';
const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A fresh temporary access key id: `ASIA` and 16 base32 characters. */
export function newSessionAccessKeyId(): string {
  let id = 'ASIA';
  for (let i = 0; i < 16; i++) id += KEY_ID_ALPHABET[randomInt(KEY_ID_ALPHABET.length)];
  return id;
}

/** Whether an access key id is a temporary one. */
export function isSessionAccessKeyId(id: string): boolean {
  return id.startsWith('ASIA');
}

/** Issues and verifies session tokens. */
export class SessionTokens {
  private readonly verifiers = new Map<string, CryptoKey>();

  constructor(private readonly store: SessionStore, private readonly policy: PolicyStore) {}

  private sessionSecret(key: SigningKey, jti: string): string {
    return createHmac('sha256', key.seed).update(`anvil-session-secret\0${jti}`).digest().subarray(0, 30).toString('base64');
  }

  /** A fingerprint of the parent secret a session is bound to, keyed so it reveals nothing about it. */
  private parentFingerprint(key: SigningKey, parentId: string, secret: string): string {
    return createHmac('sha256', key.seed).update(`anvil-parent\0${parentId}\0${secret}`).digest().subarray(0, 16).toString('base64url');
  }

  private async verifierFor(kid: string, now: number): Promise<{ key: SigningKey; verify: CryptoKey } | undefined> {
    // The store caches key rows until the policy revision moves (a rotation or retirement on any node).
    const key = await this.store.signingKey(kid, now);
    if (key === undefined) return undefined;
    let verify = this.verifiers.get(kid);
    if (verify === undefined) {
      verify = (await importJWK(key.publicJwk, SESSION_TOKEN_ALG)) as CryptoKey;
      this.verifiers.set(kid, verify);
    }
    return { key, verify };
  }

  /**
   * The principal a delegation's maker is now: undefined for root or the operator (no bound), false when the maker
   * can no longer be used (revoked, expired, deleted, its own maker gone), which ends what it made.
   */
  async makerOf(createdBy: string | undefined, now: Date = new Date()): Promise<Principal | undefined | false> {
    if (createdBy === undefined) return undefined;
    const maker = await this.policy.resolveAccessKey(createdBy, now);
    return maker.ok ? maker.principal : false;
  }

  /** What a role allows now: its scopes bounded by its maker's authority, or undefined when its maker is gone. */
  async roleScopes(role: RoleInfo, now: Date = new Date()): Promise<ScopeGrant[] | undefined> {
    const maker = await this.makerOf(role.createdBy, now);
    return maker === false ? undefined : boundedBy(role.scopes, maker);
  }

  /** Signs a new session token. The caller has decided scopes, parent and duration. */
  async issue(s: Omit<SessionClaims, 'accessKeyId' | 'expiresAt' | 'parent'> & { parent: SessionParent | { kind: 'credential'; id: string; secret: string }; expiresAt: Date; now?: Date }): Promise<IssuedSession> {
    const key = await this.store.activeSigningKey();
    const jti = randomBytes(16).toString('base64url');
    const accessKeyId = newSessionAccessKeyId();
    const parent: SessionParent = 'secret' in s.parent ? { kind: 'credential', id: s.parent.id, fp: this.parentFingerprint(key, s.parent.id, s.parent.secret) } : s.parent;
    const claims = { tenant: s.tenant, tid: s.tenantId, akid: accessKeyId, scopes: s.scopes, role: s.role, roles: s.roleIds, parent, name: s.sessionName };
    const token = await new SignJWT({ anvil: claims })
      .setProtectedHeader({ alg: SESSION_TOKEN_ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(s.subject)
      .setJti(jti)
      .setIssuedAt(Math.floor((s.now ?? new Date()).getTime() / 1000))
      .setExpirationTime(Math.floor(s.expiresAt.getTime() / 1000))
      .sign((await importJWK(key.privateJwk, SESSION_TOKEN_ALG)) as CryptoKey);
    return { accessKeyId, secretAccessKey: this.sessionSecret(key, jti), sessionToken: token, expiration: new Date(Math.floor(s.expiresAt.getTime() / 1000) * 1000) };
  }

  /** Verifies a token presented with `accessKeyId` and re-checks its parent, tenant and role at `now`. */
  async resolve(accessKeyId: string, token: string, now: Date = new Date()): Promise<SessionResolution> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const entry = kid === undefined ? undefined : await this.verifierFor(kid, now.getTime());
    if (entry === undefined) return { ok: false, reason: 'unknown_signing_key' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, entry.verify, { issuer: ISSUER, audience: AUDIENCE, algorithms: [SESSION_TOKEN_ALG], currentDate: now, requiredClaims: ['exp', 'jti', 'sub'] }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      return { ok: false, reason: 'bad_signature', detail: (error as Error).message };
    }
    const a = payload.anvil as { tenant: string; tid: string; akid: string; scopes: ScopeGrant[]; role: { tenant: string; name: string }; roles: string[]; parent: SessionParent; name: string };
    if (a === undefined || typeof a !== 'object' || typeof a.tid !== 'string' || !Array.isArray(a.roles) || a.roles.length === 0) return { ok: false, reason: 'malformed' };
    if (a.akid !== accessKeyId) return { ok: false, reason: 'access_key_mismatch' };
    const claims: SessionClaims = {
      tenant: a.tenant, tenantId: a.tid, subject: payload.sub!, accessKeyId, scopes: a.scopes, role: a.role, roleIds: a.roles, parent: a.parent,
      sessionName: a.name, expiresAt: new Date(payload.exp! * 1000),
    };
    // A session's authority is re-evaluated on every request: what its token carries ∩ every role of its chain now
    // ∩ its parent credential now (or its provider and the provider's maker now), in a tenant that is still this one.
    if (!(await this.store.tenantEnabled(a.tenant, a.tid))) return { ok: false, reason: 'tenant_disabled' };
    let scopes = a.scopes;
    let registrar: Principal | undefined;
    let boundingMakers: readonly string[] | undefined;
    for (const id of a.roles) {
      const role = await this.store.roleById(id);
      if (role === undefined || role.tenant !== a.tenant) return { ok: false, reason: 'role_removed' };
      const allowed = await this.roleScopes(role, now);
      if (allowed === undefined) return { ok: false, reason: 'maker_gone', detail: `role ${role.name}` };
      scopes = intersectScopes(scopes, sessionScopes(allowed));
    }
    if (a.parent.kind === 'credential') {
      const parent = await this.policy.resolveAccessKey(a.parent.id, now);
      if (!parent.ok) return { ok: false, reason: parent.reason === 'tenant_disabled' ? 'tenant_disabled' : 'parent_revoked', detail: `parent credential ${parent.reason}` };
      // Bound to the secret that signed the AssumeRole: the session stands while that secret verifies, so a rotation
      // ends it at once, or when the rotation's grace ends (a session opened with the old secret in the grace too).
      const fp = a.parent.fp;
      if (!parent.secrets.some((secret) => this.parentFingerprint(entry.key, a.parent.id, secret) === fp)) return { ok: false, reason: 'parent_rotated' };
      // The parent may have been narrowed since: a session never exceeds what its parent holds now.
      if (!parent.principal.isRoot) scopes = intersectScopes(scopes, sessionScopes(parent.principal.scopes));
      // So may its makers have lost tuples: the session carries the parent's relationship bounds (governance.ts).
      boundingMakers = parent.principal.boundingMakers;
    } else {
      const provider = await this.store.oidcProvider(a.parent.id);
      if (provider === undefined || provider.tenant !== a.tenant || !provider.roleIds.includes(a.roles[0]!)) return { ok: false, reason: 'provider_removed' };
      const maker = await this.makerOf(provider.createdBy, now);
      if (maker === false) return { ok: false, reason: 'maker_gone', detail: 'identity provider' };
      scopes = boundedBy(scopes, maker);
      // An issuer can name any subject: unless its registrar could grant itself anything (tenant-wide), the
      // registrar's own relationships bound the session too, so `sub=alice` never inherits more than the registrar.
      if (maker !== undefined && !holdsTenantWide(maker)) registrar = maker;
    }
    const principal: Principal = {
      tenant: a.tenant, accessKeyId, subject: payload.sub!, isRoot: false, scopes, ...(registrar ? { registrar } : {}), ...(boundingMakers ? { boundingMakers } : {}),
    };
    return { ok: true, secrets: [this.sessionSecret(entry.key, payload.jti!)], principal, claims };
  }
}
