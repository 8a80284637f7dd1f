/**
 * Who signed a request: the SigV4 secret lookup shared by S3 authentication and STS. An access key with a session
 * token (or any ASIA key) is a session, verified on every request; anything else is an application credential.
 */
import {
  isSessionAccessKeyId,
  type DenialLayer,
  type PolicyStore,
  type Principal,
  type SessionClaims,
  type SessionFailure,
  type SessionTokens,
} from '../../policy/index.ts';
import { getHeader, parseQuery, type SignedRequest } from '../auth/sigv4.ts';
import { S3Error } from '../errors.ts';

/** The caller a verified signature belongs to. */
export interface ResolvedCaller {
  principal: Principal;
  /**
   * An application credential's secrets valid now: the current one, then the previous one while a rotation's grace
   * lasts. A session it starts is bound to the one that signed (sigv4.ts signedWith).
   */
  secrets?: readonly string[];
  /** The one of `secrets` that signed the request, once its signature verified (what a session is bound to). */
  secret?: string;
  /** The session's claims, when the caller is a session. */
  session?: SessionClaims;
  /** When an application credential stops working, with its maker (absent: never). */
  expiresAt?: Date;
}

/** Why no caller could be resolved, for the denial line. */
export interface CallerFailure {
  layer: DenialLayer;
  reason: string;
  accessKeyId: string;
  /** The tenant of a known key that cannot be used (revoked, expired, tenant disabled). */
  tenant?: string;
}

/** The X-Amz-Security-Token of a request (header or presigned query), if any. */
export function sessionTokenOf(req: SignedRequest): string | undefined {
  const header = getHeader(req.headers, 'x-amz-security-token');
  if (header !== undefined) return header;
  for (const [name, value] of parseQuery(req.rawQuery)) if (name === 'X-Amz-Security-Token') return value;
  return undefined;
}

const SESSION_REASONS: Record<SessionFailure, string> = {
  malformed: 'session token malformed',
  unknown_signing_key: 'session token signed by an unknown or retired key',
  bad_signature: 'session token does not verify',
  expired: 'session token expired',
  access_key_mismatch: 'session token belongs to another access key',
  parent_revoked: 'session parent credential no longer valid',
  parent_rotated: 'session parent credential rotated',
  provider_removed: 'session identity provider removed',
  role_removed: 'session role removed',
  maker_gone: 'the maker of the session\'s role or identity provider can no longer be used',
  tenant_disabled: 'session tenant disabled or deleted',
};

/**
 * The caller behind a signed request's access key as it stands now: the same lookup authentication made, made again
 * (a session's token is verified and its parent, roles, provider and tenant re-checked; a credential's revocation,
 * expiry, maker chain and tenant), or the denial reason it no longer stands. For streams that outlive their request.
 */
export async function callerNow(opts: {
  policy: PolicyStore;
  tokens: SessionTokens;
  request: SignedRequest;
  accessKeyId: string;
}): Promise<{ ok: true; principal: Principal; secrets: readonly string[] } | { ok: false; reason: string }> {
  const { lookupSecrets, result } = callerLookup({ ...opts, now: new Date() });
  let secrets: string[] | undefined;
  try {
    secrets = await lookupSecrets(opts.accessKeyId);
  } catch {
    // A session that no longer verifies throws its S3 error; the failure is recorded in `result`.
  }
  if (result.caller && secrets) return { ok: true, principal: result.caller.principal, secrets };
  return { ok: false, reason: result.failure?.reason ?? 'the caller can no longer be resolved' };
}

/** A lookupSecrets for verifySigV4 that records the resolved caller (or the failure) as it goes. */
export function callerLookup(opts: { policy: PolicyStore; tokens: SessionTokens; request: SignedRequest; now: Date }): {
  lookupSecrets: (accessKeyId: string) => Promise<string[] | undefined>;
  result: { caller?: ResolvedCaller; failure?: CallerFailure };
} {
  const result: { caller?: ResolvedCaller; failure?: CallerFailure } = {};
  const token = sessionTokenOf(opts.request);
  const lookupSecrets = async (accessKeyId: string): Promise<string[] | undefined> => {
    if (token !== undefined || isSessionAccessKeyId(accessKeyId)) {
      if (token === undefined) {
        result.failure = { layer: 'credential', reason: 'temporary access key without a session token', accessKeyId };
        throw new S3Error('InvalidToken', 'The request carries a temporary access key but no security token.');
      }
      const session = await opts.tokens.resolve(accessKeyId, token, opts.now);
      if (!session.ok) {
        const reason = SESSION_REASONS[session.reason] + (session.detail ? ` (${session.detail})` : '');
        result.failure = { layer: 'credential', reason, accessKeyId };
        throw session.reason === 'expired' ? new S3Error('ExpiredToken') : new S3Error('InvalidToken');
      }
      result.caller = { principal: session.principal, session: session.claims };
      return session.secrets;
    }
    const r = await opts.policy.resolveAccessKey(accessKeyId, opts.now);
    if (!r.ok) {
      result.failure = { layer: 'credential', reason: `credential ${r.reason}`, accessKeyId, ...(r.tenant !== undefined ? { tenant: r.tenant } : {}) };
      // A key of a disabled or locked-down tenant is refused as AccessDenied (README, leaked-key runbook), not as a key
      // that "does not exist in our records": the tenant may come back, and the holder learns no more than no.
      if (r.reason === 'tenant_disabled') throw new S3Error('AccessDenied');
      return undefined;
    }
    result.caller = { principal: r.principal, secrets: r.secrets, ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}) };
    return r.secrets;
  };
  return { lookupSecrets, result };
}
