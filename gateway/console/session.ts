/**
 * The console's sign-in: an access key and its secret, checked against the credential as a signature would be,
 * exchanged for a short-lived session cookie (HttpOnly, SameSite=Strict, Secure on TLS, scoped to the console's
 * path). On every later request the cookie's credential is resolved again, so a revoked, expired, rotated or
 * disabled credential ends its sessions at once; the principal is exactly the one the admin API would see.
 */
import { timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ParameterizedContext } from 'koa';
import { isSessionAccessKeyId, type ConsoleSession, type ConsoleSessions, type IssuedSession, type PolicyStore, type Principal } from '../../policy/index.ts';
import type { GatewayState } from '../state.ts';

/** Where the console lives; `_anvil` is no valid bucket name, so no S3 request is ever addressed here. */
export const CONSOLE_PREFIX = '/_anvil/console';

/** The session cookie's name. */
export const SESSION_COOKIE = 'anvil_console';

/** The header every change must carry the session's CSRF token in. */
export const CSRF_HEADER = 'x-anvil-csrf';

type Ctx = ParameterizedContext<GatewayState>;

/** Whether the request came over TLS (the cookie is then Secure). */
export function overTls(ctx: Ctx): boolean {
  return (ctx.req.socket as TLSSocket).encrypted === true;
}

/** The Set-Cookie value carrying a session, or clearing it (`undefined`). */
export function sessionCookie(ctx: Ctx, issued: IssuedSession | undefined): string {
  const value = issued?.token ?? '';
  const maxAge = issued ? Math.max(0, Math.floor((issued.expiresAt.getTime() - Date.now()) / 1000)) : 0;
  return `${SESSION_COOKIE}=${value}; Path=${CONSOLE_PREFIX}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${overTls(ctx) ? '; Secure' : ''}`;
}

/** The session cookie's value, if the request carries one. */
export function cookieToken(ctx: Ctx): string | undefined {
  for (const part of (ctx.get('cookie') || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** Why a sign-in failed, for the denial line; the caller is only told that the pair is wrong. */
export type SignInFailure = { layer: 'credential' | 'signature'; reason: string };

/** Checks an access key and secret; the credential's principal and a new session, or why not. */
export async function signIn(
  { policy, sessions }: { policy: PolicyStore; sessions: ConsoleSessions },
  accessKeyId: string,
  secretKey: string,
): Promise<{ ok: true; principal: Principal; issued: IssuedSession } | { ok: false; failure: SignInFailure }> {
  if (isSessionAccessKeyId(accessKeyId)) return { ok: false, failure: { layer: 'credential', reason: 'console sign-in with a temporary (session) access key' } };
  const resolved = await policy.resolveAccessKey(accessKeyId);
  if (!resolved.ok) return { ok: false, failure: { layer: 'credential', reason: `console sign-in: credential ${resolved.reason}` } };
  const given = Buffer.from(secretKey);
  const matches = resolved.secrets.some((s) => {
    const held = Buffer.from(s);
    return held.length === given.length && timingSafeEqual(held, given);
  });
  if (!matches) return { ok: false, failure: { layer: 'signature', reason: 'console sign-in: wrong secret' } };
  return { ok: true, principal: resolved.principal, issued: sessions.issue(accessKeyId, secretKey) };
}

/**
 * The principal behind a session token now, or undefined (bad token, expired, signed out on any node, or its
 * credential can no longer sign in).
 */
export async function sessionPrincipal(policy: PolicyStore, sessions: ConsoleSessions, token: string | undefined): Promise<{ session: ConsoleSession; principal: Principal } | undefined> {
  const session = token === undefined ? undefined : sessions.verify(token);
  if (session === undefined || (await sessions.signedOut(session))) return undefined;
  const resolved = await policy.resolveAccessKey(session.accessKeyId);
  if (!resolved.ok || !sessions.boundTo(session, resolved.secrets)) return undefined;
  return { session, principal: resolved.principal };
}

/** What the page learns about who is signed in: the same as `anvil whoami`, plus its CSRF token and expiry. */
export function sessionView(principal: Principal, csrf: string, expiresAt: Date): Record<string, unknown> {
  const { tenant, accessKeyId, subject, isRoot, scopes } = principal;
  return { tenant, accessKeyId, subject, root: isRoot, scopes, csrf, expiresAt: expiresAt.toISOString() };
}
