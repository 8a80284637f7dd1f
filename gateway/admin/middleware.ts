/**
 * The admin API's two middleware, steps of the admin pipeline (gateway/app.ts): adminErrors (before authenticate)
 * renders anything thrown during an admin request as JSON, and adminApi (after authenticate) answers it.
 */
import type { Middleware } from 'koa';
import type { AccessRecords, DenialLog, PolicyStore, relationships, SessionTokens } from '../../policy/index.ts';
import { logDenial, recordUse } from '../access.ts';
import { closeAfterResponse } from '../http/lingering-close.ts';
import { feedBody } from '../http/request-body.ts';
import { signedRequestOf } from '../middleware/authenticate.ts';
import { continueIfExpected } from '../middleware/authorize.ts';
import { planBody } from '../auth/body-verifier.ts';
import type { S3Error } from '../errors.ts';
import { signedWith } from '../auth/sigv4.ts';
import type { OpResult } from '../operation.ts';
import { readLimited } from '../read-limited.ts';
import { utf8Text } from '../utf8.ts';
import { callerNow } from '../sts/callers.ts';
import type { GatewayState } from '../state.ts';
import { AdminError, adminErrorBody, invalidInput, toAdminError } from './errors.ts';
import { AdminStream, type CallerNow } from './call.ts';
import { dispatchAdmin, matchAdminRoute } from './routes.ts';

/** Largest JSON body an admin request may carry. */
export const MAX_ADMIN_BODY = 64 * 1024;
/** Largest text/plain body a route that takes one (tuple imports) may carry. */
export const MAX_ADMIN_TEXT_BODY = 512 * 1024 * 1024;

/** A JSON answer; admin responses may hold a secret, so nothing may cache them. */
function jsonResult(status: number, body: string): OpResult {
  return { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body };
}

export function adminErrors(opts: { log: (line: string) => void }): Middleware<GatewayState> {
  return async function adminErrorsMiddleware(ctx, next) {
    try {
      await next();
    } catch (thrown) {
      let err = toAdminError(thrown);
      if (!err) {
        // The cause goes to the server log only (it never holds a request body); the caller gets the request id.
        opts.log(`request ${ctx.state.requestId} failed: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
        err = new AdminError('InternalError', 'internal error; the request id identifies it in the gateway log');
      }
      if (!ctx.req.readableEnded) closeAfterResponse(ctx.res);
      ctx.state.result = jsonResult(err.status, adminErrorBody(err, ctx.state.requestId));
    }
  };
}

/**
 * Reads the whole body through the SigV4 payload verifier, refusing more than `limit` bytes; a body that does not
 * verify is handed to `refused` (for its denial line) before it rejects.
 */
async function readVerifiedBody(ctx: Parameters<Middleware<GatewayState>>[0], refused: (err: S3Error) => void, limit = MAX_ADMIN_BODY): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  const tooLarge = () => new AdminError('PayloadTooLarge', `admin request bodies are limited to ${limit} bytes`);
  if (declared > limit) throw tooLarge();
  const plan = planBody({ auth: ctx.state.auth, headers: ctx.headers, onRefused: refused });
  // Not stream.pipeline: a body refused as too large must leave the connection to close lingering, not reset it.
  const detach = feedBody(ctx.req, plan.stream);
  try {
    // Strictly: a lossy decode would turn bytes that are not UTF-8 into U+FFFD, so a tuple or grant naming them would
    // land on the different key spelled with U+FFFD (utf8.ts).
    const text = utf8Text(await readLimited(plan.stream, limit, tooLarge));
    if (text === undefined) throw invalidInput('the body is not UTF-8');
    return text;
  } finally {
    detach();
  }
}

/**
 * A request body as a JSON object ({} when empty); 400 InvalidInput when it is not one or is sent as another type.
 * `caller` names who is told to send application/json; `typeRequired`: an absent content type is refused too.
 */
export function parseJsonObject(text: string, contentType: string, caller = 'admin', typeRequired = false): Record<string, unknown> {
  if (text.trim() === '') return {};
  if ((typeRequired || contentType !== '') && !/^application\/json\b/i.test(contentType)) throw invalidInput(`${caller} requests send application/json`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidInput('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput('the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** What the admin API answers with: the stores, the denial log and the access records. */
export interface AdminDeps {
  policy: PolicyStore;
  denials: DenialLog;
  dataDir: string;
  relationships?: relationships.Relationships;
  records?: AccessRecords;
  /** Session tokens, so a stream can resolve its session caller again before each delivery (callerNow). */
  tokens?: SessionTokens;
}

/** The signed caller of an admin request as it stands now, resolved from the same access key (and session token). */
function callerOf(ctx: Parameters<Middleware<GatewayState>>[0], policy: PolicyStore, tokens: SessionTokens): () => Promise<CallerNow> {
  const request = signedRequestOf(ctx.method, ctx.req.url ?? '/', ctx.req.rawHeaders);
  const accessKeyId = ctx.state.principal!.accessKeyId;
  const auth = ctx.state.auth!;
  // Bound to the one secret that signed the request (as a console session is to the secret it was opened with): once
  // it no longer verifies (a rotation, at once or when its grace ends) the caller stands no longer, even when the
  // request was signed with the old secret during the grace.
  return async () => {
    const now = await callerNow({ policy, tokens, request, accessKeyId });
    if (!now.ok) return now;
    if (!now.secrets.some((s) => signedWith(auth, s))) return { ok: false, reason: 'the secret the request was signed with was rotated' };
    return { ok: true, principal: now.principal };
  };
}

export function adminApi(opts: AdminDeps): Middleware<GatewayState> {
  return async function adminApiMiddleware(ctx) {
    const { admin, auth, principal } = ctx.state;
    // A presigned admin URL or an unsigned body would let whoever holds the request replay or alter a change.
    if (auth?.location !== 'header') throw invalidInput('admin requests must be signed in the Authorization header');
    if (auth.payload.mode !== 'signed') throw invalidInput('admin requests must sign their payload (x-amz-content-sha256: SHA-256 of the body)');
    continueIfExpected(ctx); // authenticated: the body may come
    // A text/plain body only where the route takes one (tuple imports); everything else is a JSON object.
    const textual = /^text\/plain\b/i.test(ctx.get('content-type'));
    if (textual && !matchAdminRoute(ctx.method, admin!.path).route.textBody) throw invalidInput('this endpoint takes application/json');
    const facts = {
      requestId: ctx.state.requestId,
      remoteAddress: ctx.req.socket.remoteAddress,
      userAgent: ctx.get('user-agent') || undefined,
    };
    // The same action as a signature refused at the headers names (middleware/authenticate.ts).
    const refused = (err: S3Error) => logDenial(opts.denials, { ...facts, action: `Admin:${ctx.method} ${admin!.path}` }, { layer: 'signature', reason: `${err.code}: ${err.message}`, principal });
    const text = textual ? await readVerifiedBody(ctx, refused, MAX_ADMIN_TEXT_BODY) : undefined;
    const body = textual ? {} : parseJsonObject(await readVerifiedBody(ctx, refused), ctx.get('content-type'));
    const answer = await dispatchAdmin(
      { method: ctx.method, path: admin!.path, query: admin!.query, body, text },
      {
        principal: principal!,
        policy: opts.policy,
        dataDir: opts.dataDir,
        relationships: opts.relationships,
        denials: opts.denials,
        records: opts.records,
        requestId: ctx.state.requestId,
        header: (name) => ctx.get(name) || undefined,
        ...(opts.tokens ? { callerNow: callerOf(ctx, opts.policy, opts.tokens) } : {}),
        deny: (action, refusal) => logDenial(opts.denials, { ...facts, action }, { ...refusal, principal }),
        used: (family) => recordUse(opts.records, { ...facts, principal: principal!, family }),
      },
    );
    ctx.state.result =
      answer.body instanceof AdminStream
        ? { status: answer.status, headers: { 'content-type': answer.body.contentType, 'cache-control': 'no-store', 'x-accel-buffering': 'no' }, body: answer.body.stream }
        : jsonResult(answer.status, JSON.stringify(answer.body));
  };
}
