/**
 * Web console sessions: what a sign-in with an access key and its secret is exchanged for. A session token names the
 * access key, its random id, when it was issued and when it expires, and a MAC binding it to the secret it signed in
 * with (so rotating that secret ends the session); it is MACed (HMAC-SHA256) under a key derived from the master key
 * with HKDF, so every gateway node sharing the policy (and so the master key) accepts it and nobody can forge or
 * stretch one.
 * Nothing is stored at sign-in: the credential itself is looked up again on every use (revoked, expired, disabled:
 * refused), so a session never outlives the authority it was opened with. Only a sign-out is stored
 * (console-signouts.ts), so a copied token dies with it on every node. The CSRF token is derived from the session id.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PolicyDatabase } from './database/policy-database.ts';
import { ConsoleSignOuts } from './console-signouts.ts';

/** Longest a session may live from its sign-in, however often it is renewed. */
export const MAX_SESSION_MS = 8 * 3600_000;

const VERSION = 'v1';

/** A verified session token's contents. */
export interface ConsoleSession {
  accessKeyId: string;
  /** Random, per sign-in. */
  id: string;
  issuedAt: number;
  expiresAt: number;
  /** MAC of the secret it signed in with. */
  binding: string;
}

/** A freshly issued (or renewed) session: the token for the cookie, the CSRF token for the page. */
export interface IssuedSession {
  token: string;
  csrf: string;
  expiresAt: Date;
}

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Issues and verifies console session tokens; `idleMs` is how long one lives without being renewed. */
export class ConsoleSessions {
  constructor(private readonly key: Buffer, readonly idleMs: number, private readonly signOuts: ConsoleSignOuts) {}

  /**
   * The sessions of a node: the key derived from the master key its policy store opened with, and the sign-outs
   * recorded in its policy database (shared by every node and worker).
   */
  static open(options: { masterKey: Buffer; idleSeconds: number; database: PolicyDatabase }): ConsoleSessions {
    const key = Buffer.from(hkdfSync('sha256', options.masterKey, Buffer.alloc(0), 'anvil console session v1', 32));
    return new ConsoleSessions(key, options.idleSeconds * 1000, new ConsoleSignOuts(options.database));
  }

  /** Ends a session on every node: its token (and any copy of it) is refused from now on (ConsoleSignOuts). */
  signOut(session: ConsoleSession, tenant: string | undefined): Promise<void> {
    return this.signOuts.signOut(session, tenant);
  }

  /** Whether the session was signed out. */
  signedOut(session: ConsoleSession): Promise<boolean> {
    return this.signOuts.has(session.id);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  private bind(id: string, secret: string): string {
    return this.mac(`bind\0${id}\0${secret}`).slice(0, 22);
  }

  private token(s: ConsoleSession): IssuedSession {
    const body = b64(JSON.stringify({ k: s.accessKeyId, s: s.id, i: s.issuedAt, e: s.expiresAt, b: s.binding }));
    return { token: `${VERSION}.${body}.${this.mac(`${VERSION}.${body}`)}`, csrf: this.csrf(s), expiresAt: new Date(s.expiresAt) };
  }

  /** A new session for a credential that just proved it holds `secret`. */
  issue(accessKeyId: string, secret: string, now = Date.now()): IssuedSession {
    const id = b64(randomBytes(16));
    return this.token({ accessKeyId, id, issuedAt: now, expiresAt: Math.min(now + this.idleMs, now + MAX_SESSION_MS), binding: this.bind(id, secret) });
  }

  /** The session a token stands for, or undefined when it is malformed, forged, altered or expired. */
  verify(token: string, now = Date.now()): ConsoleSession | undefined {
    const [version, body, mac, ...rest] = token.split('.');
    if (version !== VERSION || body === undefined || mac === undefined || rest.length > 0) return undefined;
    if (!sameText(mac, this.mac(`${version}.${body}`))) return undefined;
    let claims: { k?: unknown; s?: unknown; i?: unknown; e?: unknown; b?: unknown };
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const { k, s, i, e, b } = claims;
    if (typeof k !== 'string' || typeof s !== 'string' || typeof i !== 'number' || typeof e !== 'number' || typeof b !== 'string') return undefined;
    if (now >= e || e > i + MAX_SESSION_MS) return undefined;
    return { accessKeyId: k, id: s, issuedAt: i, expiresAt: e, binding: b };
  }

  /** Whether the session was opened with one of the credential's current secrets (a rotation ends it). */
  boundTo(session: ConsoleSession, secrets: readonly string[]): boolean {
    return secrets.some((secret) => sameText(session.binding, this.bind(session.id, secret)));
  }

  /** The CSRF token a page of this session sends with every change. */
  csrf(session: ConsoleSession): string {
    return this.mac(`csrf\0${session.id}`).slice(0, 32);
  }

  /** Whether a presented CSRF token is this session's. */
  csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
    return presented !== undefined && sameText(presented, this.csrf(session));
  }

  /**
   * The session with its idle expiry moved forward once more than half of it has passed (never past
   * MAX_SESSION_MS from sign-in), or undefined when it needs no renewal yet.
   */
  renew(session: ConsoleSession, now = Date.now()): IssuedSession | undefined {
    if (session.expiresAt - now > this.idleMs / 2) return undefined;
    const expiresAt = Math.min(now + this.idleMs, session.issuedAt + MAX_SESSION_MS);
    if (expiresAt <= session.expiresAt) return undefined;
    return this.token({ ...session, expiresAt });
  }
}
