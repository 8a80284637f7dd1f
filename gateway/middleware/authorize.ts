/**
 * Authorization before anything reaches storage: the route's API family on the target bucket and key (the
 * reserved prefix, tenant and scope layers), and read access on any copy source.
 */
import type { Middleware } from 'koa';
import type { DenialLog, PolicyStore } from '../../policy/index.ts';
import { createAccess } from '../access.ts';
import { parseCopySource } from '../s3-headers.ts';
import type { GatewayState } from '../state.ts';

export function authorizeRequest(opts: { policy: PolicyStore; denials: DenialLog }): Middleware<GatewayState> {
  return async function authorizeMiddleware(ctx, next) {
    const { route, target, principal } = ctx.state;
    const access = createAccess({
      principal: principal!,
      policy: opts.policy,
      denials: opts.denials,
      facts: {
        requestId: ctx.state.requestId,
        action: route!.op,
        remoteAddress: ctx.req.socket.remoteAddress,
        userAgent: ctx.get('user-agent') || undefined,
      },
    });
    ctx.state.access = access;
    const copyHeader = ctx.get('x-amz-copy-source');
    const copySource = route!.copy && copyHeader ? parseCopySource(copyHeader) : undefined;
    const copyLabel = copySource ? `${copySource.bucket}/${copySource.key}` : undefined;
    // Listings and DeleteObjects decide per key inside the operation; the bucket-level question comes first.
    access.require(route!.family, target!.bucket, target!.key || undefined, { copySource: copyLabel });
    if (copySource) access.require('object:read', copySource.bucket, copySource.key, { copySource: copyLabel });
    await next();
  };
}
