/**
 * Authentication: a valid SigV4 signature (header or presigned) from a live credential, or nothing passes.
 * Failures are denial lines with layer signature or credential; the client sees only the S3 error code.
 */
import type { Middleware } from 'koa';
import type { DenialLog, PolicyStore } from '../../policy/index.ts';
import type { DenialLayer } from '../../policy/types.ts';
import { logDenial } from '../access.ts';
import { verifySigV4, type SignedRequest } from '../auth/sigv4.ts';
import { S3Error } from '../errors.ts';
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

export function authenticate(opts: { policy: PolicyStore; denials: DenialLog; region: string }): Middleware<GatewayState> {
  const { policy, denials, region } = opts;
  return async function authenticateMiddleware(ctx, next) {
    const facts = {
      requestId: ctx.state.requestId,
      action: ctx.state.route?.op ?? (ctx.state.admin ? `Admin:${ctx.method} ${ctx.state.admin.path}` : ctx.method),
      remoteAddress: ctx.req.socket.remoteAddress,
      userAgent: ctx.get('user-agent') || undefined,
    };
    const target = ctx.state.target!;
    let failure: { layer: DenialLayer; reason: string; accessKeyId?: string } | undefined;
    let principal: import('../../policy/types.ts').Principal | undefined;
    const refuse = (layer: DenialLayer, reason: string, accessKeyId?: string) =>
      logDenial(denials, facts, { layer, reason, accessKeyId, bucket: target.bucket, key: target.key });
    try {
      const auth = await verifySigV4(signedRequestOf(ctx.method, ctx.req.url ?? '/', ctx.req.rawHeaders), {
        region,
        now: new Date(),
        services: ['s3'],
        lookupSecrets: async (accessKeyId) => {
          const r = policy.resolveAccessKey(accessKeyId);
          if (!r.ok) {
            failure = { layer: 'credential', reason: `credential ${r.reason}`, accessKeyId };
            return undefined;
          }
          principal = r.principal;
          return r.secrets;
        },
      });
      if (!auth) {
        refuse('signature', 'anonymous request');
        throw new S3Error('AccessDenied');
      }
      ctx.state.auth = auth;
      ctx.state.principal = principal;
    } catch (err) {
      if (err instanceof S3Error && err.code !== 'AccessDenied') {
        refuse(failure?.layer ?? 'signature', failure?.reason ?? `${err.code}: ${err.message}`, failure?.accessKeyId ?? principal?.accessKeyId);
      } else if (err instanceof S3Error && /expired/i.test(err.message)) {
        refuse('signature', err.message);
      }
      throw err;
    }
    await next();
  };
}
