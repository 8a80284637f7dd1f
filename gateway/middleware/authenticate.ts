/**
 * Authentication: a capability (x-anvil-capability header or X-Anvil-Capability query parameter), or a valid SigV4
 * signature (header or presigned) from a live credential or session, or nothing passes. Failures are denial lines
 * (layer signature, credential or capability); the client sees only the S3 error code.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import {
  authorize,
  CapabilityError,
  capabilityPrincipal,
  type CapabilityStore,
  type DenialLog,
  type PolicyStore,
  type Principal,
  type SessionTokens,
} from '../../policy/index.ts';
import type { DenialLayer } from '../../policy/types.ts';
import { logDenial } from '../access.ts';
import { isSigV2, verifySigV2 } from '../auth/sigv2.ts';
import { authLocation, verifySigV4, type SignedRequest } from '../auth/sigv4.ts';
import { S3Error } from '../errors.ts';
import { nonUtf8QueryParam } from '../utf8.ts';
import { callerLookup } from '../sts/callers.ts';
import type { GatewayState } from '../state.ts';

/** Node's rawHeaders as name/value pairs, which SigV4 needs (repeated headers joined with ',' not ', '). */
export function headerPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** The SignedRequest view of a Node request. */
export function signedRequestOf(method: string, url: string, rawHeaders: string[]): SignedRequest {
  const q = url.indexOf('?');
  return {
    method,
    rawPath: q >= 0 ? url.slice(0, q) : url,
    rawQuery: q >= 0 ? url.slice(q + 1) : '',
    headers: headerPairs(rawHeaders),
  };
}

/** The services an S3 request's credential scope may name (one array for every request). */
const S3_SERVICES = ['s3'];

/** The header and query parameter a capability may arrive in. */
export const CAPABILITY_HEADER = 'x-anvil-capability';
export const CAPABILITY_QUERY = 'X-Anvil-Capability';

type Ctx = ParameterizedContext<GatewayState>;
type Refuse = (layer: DenialLayer, reason: string, who?: { accessKeyId?: string; tenant?: string; principal?: Principal }) => void;

/**
 * The capability a request presents, if any. One only: a repeated header or query parameter, or both forms at once,
 * is 400 InvalidArgument, as a repeated signed header or X-Amz-* parameter is (which of two would be the credential
 * must not depend on their order).
 */
function capabilityOf(ctx: Ctx): string | undefined {
  const header = ctx.req.headers[CAPABILITY_HEADER] as string | undefined;
  const query = ctx.state.target?.query.getAll(CAPABILITY_QUERY) ?? [];
  if (query.length > 1) {
    throw new S3Error('InvalidArgument', `The ${CAPABILITY_QUERY} query parameter must not be given more than once.`, { fields: { ArgumentName: CAPABILITY_QUERY } });
  }
  if (header !== undefined) {
    const raw = ctx.req.rawHeaders;
    let n = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === CAPABILITY_HEADER.length && raw[i]!.toLowerCase() === CAPABILITY_HEADER) n++;
    // A capability is base64url, so a comma is a list of them folded into one field line (RFC 9110 §5.3).
    if (n > 1 || header.includes(',')) throw new S3Error('InvalidArgument', `The ${CAPABILITY_HEADER} header must not be given more than once.`, { fields: { ArgumentName: CAPABILITY_HEADER } });
    if (query.length > 0) {
      throw new S3Error('InvalidArgument', `A capability is given both as the ${CAPABILITY_HEADER} header and as the ${CAPABILITY_QUERY} query parameter.`, { fields: { ArgumentName: CAPABILITY_QUERY } });
    }
  }
  return header || query[0] || undefined;
}

/**
 * A capability request: verified (chain, root key, expiry, revocation, tenant), then the route's own question asked
 * once here so a refusal names layer capability; authorize() asks it again with the same principal.
 */
async function capabilityCaller(ctx: Ctx, capability: string, opts: { policy: PolicyStore; capabilities: CapabilityStore; refuse: Refuse }): Promise<Principal> {
  const { route, target, admin } = ctx.state;
  const req = signedRequestOf(ctx.method, ctx.req.url ?? '/', ctx.req.rawHeaders);
  if (authLocation(req) !== undefined) {
    const message = 'Only one auth mechanism allowed: a capability or a signature, not both';
    opts.refuse('capability', message);
    throw new S3Error('InvalidArgument', message);
  }
  let verified: Awaited<ReturnType<CapabilityStore['verify']>>;
  try {
    verified = await opts.capabilities.verify(capability);
  } catch (error) {
    if (!(error instanceof CapabilityError)) throw error;
    opts.refuse('capability', error.message);
    throw new S3Error('AccessDenied');
  }
  // A capability never does more than its minter can now; a revoked, expired or deleted minter ends it.
  let minter: Principal | undefined;
  if (verified.mintedBy !== undefined) {
    const made = await opts.policy.resolveAccessKey(verified.mintedBy);
    if (!made.ok) {
      opts.refuse('capability', `the capability's minter ${verified.mintedBy} is ${made.reason}`, { accessKeyId: `capability:${verified.id}` });
      throw new S3Error('AccessDenied');
    }
    minter = made.principal;
  }
  const principal = capabilityPrincipal(verified, minter);
  if (admin || !route) {
    opts.refuse('capability', 'capabilities do not reach the admin API', { principal });
    throw new S3Error('AccessDenied');
  }
  const bucket = target!.bucket;
  const key = target!.key || undefined;
  const decision = authorize(principal, { family: route.family, bucket: bucket || undefined, key, bucketOwner: bucket ? await opts.policy.bucketOwner(bucket) : undefined });
  if (!decision.allowed) {
    opts.refuse(decision.layer === 'reserved_namespace' ? decision.layer : 'capability', `capability: ${decision.reason}`, { principal });
    throw new S3Error('AccessDenied');
  }
  return principal;
}

/**
 * InvalidArgument for a query parameter whose percent-decoded bytes are not UTF-8 (`prefix=%FF`, `uploadId=%FF`):
 * no key, name or header value can be such bytes, and a lossy decode would read them as the U+FFFD someone else's
 * key holds. Asked once the caller is known, so a correctly signed request learns what is wrong with it (the
 * signature covers the bytes, sigv4.ts canonicalQuery) and an unsigned one is still a 403 first.
 */
function refuseNonUtf8Query(target: { rawQuery: string }): void {
  const name = nonUtf8QueryParam(target.rawQuery);
  if (name !== undefined) {
    throw new S3Error('InvalidArgument', `The value of query parameter ${name} is not valid UTF-8`, { fields: { ArgumentName: name } });
  }
}

export function authenticate(opts: {
  policy: PolicyStore;
  denials: DenialLog;
  region: string;
  tokens: SessionTokens;
  capabilities: CapabilityStore;
  /** Accept AWS Signature Version 2 (header and presigned) besides SigV4. */
  sigV2?: boolean;
}): Middleware<GatewayState> {
  const { policy, denials, region, tokens, capabilities } = opts;
  return async function authenticateMiddleware(ctx, next) {
    // A browser form upload was authenticated by its POST policy (middleware/post-object.ts).
    if (ctx.state.postForm) {
      refuseNonUtf8Query(ctx.state.target!);
      return next();
    }
    const method = ctx.req.method ?? 'GET';
    const target = ctx.state.target!;
    // The denial line's request facts are gathered only when there is a denial to write.
    const refuse: Refuse = (layer, reason, who = {}) => {
      const facts = {
        requestId: ctx.state.requestId,
        action: ctx.state.route?.op ?? (ctx.state.admin ? `Admin:${method} ${ctx.state.admin.path}` : method),
        remoteAddress: ctx.req.socket.remoteAddress,
        userAgent: ctx.req.headers['user-agent'] || undefined,
      };
      logDenial(denials, facts, { layer, reason, ...who, bucket: target.bucket, key: target.key });
    };

    let capability: string | undefined;
    try {
      capability = capabilityOf(ctx);
    } catch (err) {
      refuse('capability', (err as Error).message);
      throw err;
    }
    if (capability !== undefined) {
      ctx.state.principal = await capabilityCaller(ctx, capability, { policy, capabilities, refuse });
      refuseNonUtf8Query(target);
      return next();
    }

    const request = signedRequestOf(method, ctx.req.url ?? '/', ctx.req.rawHeaders);
    const now = new Date();
    const { lookupSecrets, result } = callerLookup({ policy, tokens, request, now });
    let auth: Awaited<ReturnType<typeof verifySigV4>>;
    try {
      auth = opts.sigV2 && isSigV2(request)
        ? await verifySigV2(request, { now, lookupSecrets, hostBucket: target.virtualHost ? target.bucket : undefined })
        : await verifySigV4(request, { region, now, services: S3_SERVICES, lookupSecrets });
    } catch (err) {
      // Every refused signature is a denial line: bad or unknown keys, expiry, unsigned x-amz-* headers.
      const failure = result.failure;
      if (err instanceof S3Error) {
        const unsigned = err.fields.HeadersNotSigned ? ` (${err.fields.HeadersNotSigned})` : '';
        refuse(failure?.layer ?? 'signature', failure?.reason ?? `${err.code}: ${err.message}${unsigned}`, {
          accessKeyId: failure?.accessKeyId ?? result.caller?.principal.accessKeyId,
          tenant: failure?.tenant ?? result.caller?.principal.tenant,
        });
      }
      throw err;
    }
    if (!auth) {
      refuse('signature', 'anonymous request');
      throw new S3Error('AccessDenied');
    }
    ctx.state.auth = auth;
    ctx.state.principal = result.caller!.principal;
    refuseNonUtf8Query(target);
    await next();
  };
}
