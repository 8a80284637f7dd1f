/**
 * Authorization before anything reaches storage: the route's API family on the target bucket and key (the
 * reserved prefix, tenant and scope layers, then relationships in a governed bucket), and read access on any copy
 * source (CopyObject, UploadPartCopy), decided the same way in the source's bucket.
 */
import type { Middleware } from 'koa';
import type { DenialLog, PolicyStore, relationships } from '../../policy/index.ts';
import { createAccess } from '../access.ts';
import { parseCopySource } from '../s3-headers.ts';
import type { GatewayState } from '../state.ts';

export function authorizeRequest(opts: { policy: PolicyStore; denials: DenialLog; relationships?: relationships.Relationships }): Middleware<GatewayState> {
  return async function authorizeMiddleware(ctx, next) {
    const { route, target, principal } = ctx.state;
    const access = createAccess({
      principal: principal!,
      policy: opts.policy,
      denials: opts.denials,
      relationships: opts.relationships,
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
