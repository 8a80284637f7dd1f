/** Runs the matched operation with its OpContext; the body, when the operation reads one, is verified as it streams. */
import type { Middleware } from 'koa';
import type { Readable } from 'node:stream';
import type { StoredChecksum } from '../../storage/backend.ts';
import { planBody } from '../auth/body-verifier.ts';
import { S3Error } from '../errors.ts';
import { feedBody } from '../http/request-body.ts';
import type { OpContext, Services } from '../operation.ts';
import { readLimited } from '../read-limited.ts';
import { refuseUnsupportedFeatures } from '../request-features.ts';
import type { GatewayState } from '../state.ts';
import { utf8Text } from '../utf8.ts';

/** Largest XML request body read whole. */
const DEFAULT_TEXT_LIMIT = 1024 * 1024;

export function runOperation(services: Services): Middleware<GatewayState> {
  return async function operationMiddleware(ctx, next) {
    const { route, target, principal, access, auth } = ctx.state;
    // Only now, once the caller is authenticated and authorized: a caller refused there gets its 403 and its denial
    // line, not a 501 that answers before anyone is asked who is calling.
    const requestHeaders = ctx.req.headers;
    refuseUnsupportedFeatures(route!.op, requestHeaders, target!.query);
    if (route!.body) {
      const hasLength = Boolean(requestHeaders['content-length']) || Boolean(requestHeaders['transfer-encoding']);
      if ((ctx.req.method === 'PUT' || ctx.req.method === 'POST') && !hasLength) throw new S3Error('MissingContentLength');
    }
    const headers = route!.objectChecksum ? Object.fromEntries(Object.entries(requestHeaders).filter(([n]) => !n.startsWith('x-amz-checksum-'))) : requestHeaders;
    // Whatever planBody may refuse, it refuses here, before the operation runs, as S3 does.
    // A body refused as it streams writes its denial line then, as a signature refused at the headers did.
    const plan = planBody({ auth, headers, onRefused: (err) => access!.bodyRefused(err, target!.bucket, target!.key) });
    let stream: Readable | undefined;
    let detach: (() => void) | undefined;
    const body = (): Readable => {
      if (!stream) {
        stream = plan.stream;
        // Not stream.pipeline: a store that stops reading (a failed precondition) must not reset the connection.
        detach = feedBody(ctx.req, plan.stream);
      }
      return stream;
    };
    const op: OpContext = {
      requestId: ctx.state.requestId,
      bucket: target!.bucket,
      key: target!.key,
      query: target!.query,
      headers: requestHeaders,
      services,
      principal: principal!,
      access: access!,
      body,
      bodyLength: plan.decodedLength,
      bodyChecksum: (): StoredChecksum | undefined => plan.checksum(),
      form: ctx.state.postForm,
      async readText(limit = DEFAULT_TEXT_LIMIT) {
        if (plan.decodedLength !== undefined && plan.decodedLength > limit) throw new S3Error('MalformedXML');
        // Strictly: a lossy decode would turn bytes that are not UTF-8 into the U+FFFD of someone else's key.
        const text = utf8Text(await readLimited(body(), limit, () => new S3Error('MalformedXML')));
        if (text === undefined) throw new S3Error('MalformedXML', 'The XML you provided was not valid UTF-8');
        return text;
      },
    };
    try {
      ctx.state.result = await route!.run(op);
    } finally {
      // The operation is over: a body it left unread is no longer fed to it, so the responder's lingering close can
      // drain it (a reader that stalled without ending would otherwise hold the request paused).
      detach?.();
    }
    await next();
  };
}
