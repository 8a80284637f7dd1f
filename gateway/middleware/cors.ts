/**
 * CORS for browsers, from the bucket's own rules (S3 User Guide, "Using cross-origin resource sharing"):
 * preflight OPTIONS requests are answered here without credentials, and actual requests carrying an Origin get the
 * matching Access-Control-* headers, success or error. Nothing here grants authority: a preflight only tells the
 * browser what it may send, and the request it then sends is authenticated and authorized like any other.
 */
import type { Middleware, Next, ParameterizedContext } from 'koa';
import type { Backend } from '../../storage/backend.ts';
import { NoSuchBucketError } from '../../storage/errors.ts';
import { adminTargetOf } from '../admin/index.ts';
import { corsHeaders, matchRule, parseCorsConfiguration, type CorsRequest, type CorsRule } from '../cors.ts';
import { S3Error } from '../errors.ts';
import type { GatewayState } from '../state.ts';
import { targetOf } from './addressing.ts';

/** Parsed rules by document, so a busy bucket's rules are parsed once. */
const parsed = new Map<string, CorsRule[]>();

async function rulesOf(backend: Backend, bucket: string): Promise<CorsRule[] | undefined> {
  if (bucket === '') return undefined;
  let doc: string | undefined;
  try {
    doc = await backend.getBucketCors(bucket);
  } catch (err) {
    if (err instanceof NoSuchBucketError) return undefined;
    throw err;
  }
  if (doc === undefined) return undefined;
  let rules = parsed.get(doc);
  if (!rules) {
    rules = parseCorsConfiguration(doc);
    if (parsed.size > 1000) parsed.clear();
    parsed.set(doc, rules);
  }
  return rules;
}

/** Answers preflights and decorates cross-origin responses; `domain` resolves virtual-hosted buckets. */
export function cors(opts: { backend: Backend; domain: string }): Middleware<GatewayState> {
  // Not async on the common path: a request without Origin (every SDK's) is handed on without one more promise.
  return function corsMiddleware(ctx, next) {
    if (!ctx.req.headers.origin && ctx.req.method !== 'OPTIONS') return next();
    return crossOrigin(ctx, next);
  };

  async function crossOrigin(ctx: ParameterizedContext<GatewayState>, next: Next): Promise<void> {
    const origin = ctx.get('origin');
    const target = targetOf(ctx, opts.domain);
    if (adminTargetOf(target)) return next();
    if (ctx.method === 'OPTIONS') {
      const method = ctx.get('access-control-request-method');
      if (!origin) throw new S3Error('InvalidRequest', 'Insufficient information. Origin request header needed.');
      if (!method) throw new S3Error('InvalidRequest', 'Invalid Access-Control-Request-Method: null');
      const requested = ctx.get('access-control-request-headers').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
      const req: CorsRequest = { origin, method, headers: requested };
      // One refusal for a missing bucket, a bucket without rules and a rule that does not match: an unauthenticated
      // preflight must not tell which buckets exist (nor which have CORS rules).
      const rules = await rulesOf(opts.backend, target.bucket);
      const rule = rules && matchRule(rules, req);
      if (!rule) throw new S3Error('CORSResponse');
      ctx.set(corsHeaders(rule, req, true));
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    const req: CorsRequest = { origin, method: ctx.method, headers: [] };
    const rules = await rulesOf(opts.backend, target.bucket).catch(() => undefined);
    const rule = rules && matchRule(rules, req);
    if (rule) ctx.set(corsHeaders(rule, req, false));
    await next();
  }
}
