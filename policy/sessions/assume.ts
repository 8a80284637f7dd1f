/**
 * The two ways to obtain a session: AssumeRole (an authenticated caller, whose own scopes bound the session) and
 * AssumeRoleWithWebIdentity (an OpenID Connect ID token from an issuer the tenant trusts, verified against the
 * issuer's keys with the configured algorithms only). Both can only narrow: role ∩ caller ∩ session policy.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { SHOWN_AS } from '../denial-log.ts';
import { InvalidInputError, PolicyError } from '../errors.ts';
import type { Principal, ScopeGrant } from '../types.ts';
import { boundedBy } from '../scopes.ts';
import { webIdentitySubject } from '../subjects.ts';
import { assertJwksFetchable, type JwksPolicy } from './jwks.ts';
import { intersectScopes, sessionPolicyGrants, sessionScopes } from './scopes.ts';
import { MIN_SESSION_SECONDS, parseRoleArn, type OidcProviderInfo, type RoleInfo, type SessionStore } from './store.ts';
import type { IssuedSession, SessionClaims, SessionTokens } from './tokens.ts';

/** What kind of refusal a session request met; the gateway maps each to an STS error code. */
export type SessionErrorKind = 'denied' | 'invalid' | 'invalid_policy' | 'invalid_identity_token' | 'expired_identity_token';

/** A refused session request: `message` is what the caller is told, `detail` (for the denial log) says why. */
export class SessionError extends PolicyError {
  override name = 'SessionError';
  constructor(readonly kind: SessionErrorKind, message: string, readonly detail: string = message) {
    super(message);
  }
}

/** A session handed out, with what STS reports about it. */
export interface AssumedSession {
  credentials: IssuedSession;
  role: RoleInfo;
  subject: string;
  sessionName: string;
  scopes: ScopeGrant[];
  /** For web identity: the token's subject, audience and issuer. */
  identity?: { sub: string; aud: string; iss: string; providerId: string };
}

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const DEFAULT_DURATION = 3600;

/** Where sessions come from. */
export interface SessionDeps {
  store: SessionStore;
  tokens: SessionTokens;
}

/**
 * The one refusal a caller gets whether the role does not exist, belongs to another tenant, does not trust it or
 * allows nothing any more: STS answers alike, so AssumeRole is no oracle for which roles exist. The denial line
 * keeps the real reason.
 */
function notAuthorized(action: string, who: string, arn: string, detail: string): SessionError {
  return new SessionError('denied', `User: ${who} is not authorized to perform: sts:${action} on resource: ${arn}`, detail);
}

/** The denial-line reason of a missing role, which every refusal about a role the reader cannot see reads as. */
function noRole(name: string, tenant: string): string {
  return `no role ${name} in tenant ${tenant}`;
}

/**
 * The role an ARN names, for a caller of `callerTenant` (undefined: root, which may assume any tenant's). Another
 * tenant's role is refused before it is looked up, so the caller's denial line is the same whether it exists or not.
 */
async function requireRole(store: SessionStore, arn: string, callerTenant: string | undefined, refuse: (detail: string) => SessionError): Promise<RoleInfo> {
  const parsed = parseRoleArn(arn);
  if (parsed === undefined) throw new SessionError('invalid', `RoleArn ${arn} is not arn:aws:iam::<tenant>:role/<name>`);
  if (callerTenant !== undefined && parsed.tenant !== callerTenant) throw refuse(`a caller of tenant ${callerTenant} may not assume a role of tenant ${parsed.tenant}`);
  const role = await store.role(parsed.tenant, parsed.name);
  if (role === undefined) throw refuse(noRole(parsed.name, parsed.tenant));
  return role;
}

function trusts(role: RoleInfo, names: string[]): boolean {
  if (role.trust === undefined) return true;
  return role.trust.some((t) => names.some((n) => (t.endsWith('*') ? n.startsWith(t.slice(0, -1)) : n === t)));
}

function durationOf(role: RoleInfo, asked: number | undefined): number {
  if (asked === undefined) return Math.min(DEFAULT_DURATION, role.maxDurationSeconds);
  if (!Number.isInteger(asked) || asked < MIN_SESSION_SECONDS) {
    throw new SessionError('invalid', `DurationSeconds must be at least ${MIN_SESSION_SECONDS}`);
  }
  if (asked > role.maxDurationSeconds) {
    throw new SessionError('invalid', `The requested DurationSeconds exceeds the MaxSessionDuration (${role.maxDurationSeconds}) set for this role.`);
  }
  return asked;
}

function narrowByPolicy(scopes: ScopeGrant[], policy: string | undefined): ScopeGrant[] {
  if (policy === undefined || policy === '') return scopes;
  try {
    return intersectScopes(scopes, sessionPolicyGrants(policy));
  } catch (error) {
    if (error instanceof InvalidInputError) throw new SessionError('invalid_policy', error.message);
    throw error;
  }
}

function checkSessionName(name: string): void {
  if (!SESSION_NAME.test(name)) throw new SessionError('invalid', 'RoleSessionName must be 2-64 characters of letters, digits and +=,.@-_');
}

/** AssumeRole for an authenticated caller: an application credential, root, or (chaining) another session. */
export async function assumeRole(deps: SessionDeps, input: {
  caller: Principal;
  /** The secret the caller's credential has now (absent for a session caller). */
  callerSecret?: string;
  callerSession?: SessionClaims;
  /** When the caller's application credential stops working (its own expiry or its maker's); bounds the session. */
  callerExpiresAt?: Date;
  roleArn: string;
  sessionName: string;
  durationSeconds?: number;
  policy?: string;
  now?: Date;
}): Promise<AssumedSession> {
  const { caller, callerSession } = input;
  checkSessionName(input.sessionName);
  const refuse = (detail: string) => notAuthorized('AssumeRole', caller.subject, input.roleArn, detail);
  // Root may assume any tenant's role; a session of root is no longer root, so chaining stays within the tenant.
  const role = await requireRole(deps.store, input.roleArn, caller.isRoot && callerSession === undefined ? undefined : caller.tenant, refuse);
  // A refusal about a role that exists carries the missing role's reason too: an admin of the tenant that cannot
  // see the role is shown only that (gateway/admin/view.ts), so its lines tell no hidden role from a missing one.
  const refuseRole = (truth: string) => refuse(`${truth}${SHOWN_AS}${noRole(role.name, role.tenant)})`);
  const subject = callerSession?.subject ?? caller.subject;
  const names = [subject, caller.accessKeyId, ...(callerSession?.parent.kind === 'credential' ? [callerSession.parent.id] : [])];
  if (!trusts(role, names)) throw refuseRole(`${role.arn} does not trust ${subject}`);
  const roleScopes = await deps.tokens.roleScopes(role, input.now);
  if (roleScopes === undefined) throw refuseRole(`the maker of ${role.arn} can no longer be used`);
  const tenantId = callerSession?.tenantId ?? (await deps.store.tenantId(role.tenant));
  if (tenantId === undefined) throw refuseRole(`tenant ${role.tenant} is gone`);
  const duration = durationOf(role, input.durationSeconds);
  const held = caller.isRoot ? sessionScopes(roleScopes) : intersectScopes(sessionScopes(roleScopes), sessionScopes(caller.scopes));
  const scopes = narrowByPolicy(held, input.policy);
  const now = input.now ?? new Date();
  let expiresAt = new Date(now.getTime() + duration * 1000);
  // Never advertised past the caller's own end: the session would be refused from then on anyway.
  if (callerSession && callerSession.expiresAt < expiresAt) expiresAt = callerSession.expiresAt;
  if (input.callerExpiresAt && input.callerExpiresAt < expiresAt) expiresAt = input.callerExpiresAt;
  let parent: Parameters<SessionTokens['issue']>[0]['parent'];
  if (callerSession) parent = callerSession.parent;
  else if (input.callerSecret !== undefined) parent = { kind: 'credential', id: caller.accessKeyId, secret: input.callerSecret };
  else throw new SessionError('denied', 'the caller has no credential to descend from');
  // A chained session keeps every role of its chain: each one bounds it on every request.
  const roleIds = [...(callerSession?.roleIds ?? []), role.id];
  const credentials = await deps.tokens.issue({
    tenant: role.tenant, tenantId, subject, scopes, role: { tenant: role.tenant, name: role.name }, roleIds, parent, sessionName: input.sessionName, expiresAt, now,
  });
  return { credentials, role, subject, sessionName: input.sessionName, scopes };
}

const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

async function keySetOf(provider: OidcProviderInfo, policy: JwksPolicy): Promise<Parameters<typeof jwtVerify>[1]> {
  if (/^[a-z][a-z0-9+.-]*:/i.test(provider.jwks)) {
    // Checked before every fetch, not only when the provider was added: DNS may have changed since.
    await assertJwksFetchable(provider.jwks, policy);
    let set = remoteSets.get(provider.jwks);
    if (set === undefined) remoteSets.set(provider.jwks, (set = createRemoteJWKSet(new URL(provider.jwks))));
    return set;
  }
  // Read on every call: an operator replacing the file (key rotation at the IdP) takes effect at once.
  return createLocalJWKSet(JSON.parse(await readFile(provider.jwks, 'utf8')) as JSONWebKeySet);
}

/**
 * The one refusal of a web identity token that does not verify, whatever the cause (not a JWT, no provider for its
 * issuer, keys that cannot be loaded, a bad signature, issuer, audience or algorithm): an unauthenticated caller
 * learns nothing about which issuers or audiences a tenant trusts. `detail` (the denial log) keeps the cause.
 */
function unverifiedToken(detail: string): SessionError {
  return new SessionError('invalid_identity_token', 'The web identity token could not be validated', detail);
}

/** AssumeRoleWithWebIdentity: an unsigned request whose proof is the ID token itself. */
export async function assumeRoleWithWebIdentity(deps: SessionDeps, input: {
  webIdentityToken: string;
  roleArn: string;
  sessionName: string;
  durationSeconds?: number;
  policy?: string;
  now?: Date;
}): Promise<AssumedSession> {
  checkSessionName(input.sessionName);
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(input.webIdentityToken);
  } catch {
    throw unverifiedToken('the web identity token is not a JWT');
  }
  const parsed = parseRoleArn(input.roleArn);
  if (parsed === undefined) throw new SessionError('invalid', `RoleArn ${input.roleArn} is not arn:aws:iam::<tenant>:role/<name>`);
  // The issuer first (as STS does), then the token's signature, and only then the role: an unverified caller learns
  // nothing about which roles exist, and a missing role answers as one this provider may not assume.
  const [provider] = typeof unverified.iss === 'string' ? await deps.store.oidcProvidersFor(parsed.tenant, unverified.iss) : [];
  if (provider === undefined) throw unverifiedToken(`no OpenID Connect provider of tenant ${parsed.tenant} for issuer ${String(unverified.iss).slice(0, 200)}`);
  const now = input.now ?? new Date();
  let keys: Awaited<ReturnType<typeof keySetOf>>;
  try {
    keys = await keySetOf(provider, deps.store.jwksPolicy);
  } catch {
    // The cause (a missing file, a refused or unreachable URL) is the operator's business, not the caller's.
    throw unverifiedToken(`the keys of issuer ${provider.issuer} could not be loaded`);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(input.webIdentityToken, keys, {
      issuer: provider.issuer,
      audience: provider.audience,
      algorithms: provider.algorithms,
      currentDate: now,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw new SessionError('expired_identity_token', 'the web identity token has expired');
    throw unverifiedToken(`the web identity token does not verify against provider ${provider.id}: ${(error as Error).message}`);
  }
  const refuse = (detail: string) => notAuthorized('AssumeRoleWithWebIdentity', 'web identity', input.roleArn, detail);
  const role = await requireRole(deps.store, input.roleArn, provider.tenant, refuse);
  if (!provider.roleIds.includes(role.id)) throw refuse(`OpenID Connect provider ${provider.id} may not assume ${role.arn}`);
  const sub = typeof payload.sub === 'string' ? payload.sub : '';
  // The subject is built with the one tuple escaping: `b%6Fb` stays itself, `*`, `#`, `@`, `:` spell nothing else.
  const subject = webIdentitySubject(sub);
  if (subject === undefined) throw new SessionError('invalid_identity_token', 'the web identity token\'s sub cannot name a subject (empty, "*", too long, or holding characters XML cannot carry)');
  if (!trusts(role, [subject, `oidc:${provider.id}`])) throw refuse(`${role.arn} does not trust ${subject}`);
  const roleScopes = await deps.tokens.roleScopes(role, now);
  const maker = await deps.tokens.makerOf(provider.createdBy, now);
  if (roleScopes === undefined || maker === false) throw refuse(`the maker of ${role.arn} or of provider ${provider.id} can no longer be used`);
  const tenantId = await deps.store.tenantId(role.tenant);
  if (tenantId === undefined) throw refuse(`tenant ${role.tenant} is gone`);
  const duration = durationOf(role, input.durationSeconds);
  // The provider's maker bounds what its tokens can ever reach, as it bounds the role.
  const scopes = narrowByPolicy(boundedBy(sessionScopes(roleScopes), maker), input.policy);
  const credentials = await deps.tokens.issue({
    tenant: role.tenant, tenantId, subject, scopes, role: { tenant: role.tenant, name: role.name }, roleIds: [role.id], parent: { kind: 'oidc', id: provider.id },
    sessionName: input.sessionName, expiresAt: new Date(now.getTime() + duration * 1000), now,
  });
  return { credentials, role, subject, sessionName: input.sessionName, scopes, identity: { sub, aud: provider.audience, iss: provider.issuer, providerId: provider.id } };
}
