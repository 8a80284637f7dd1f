/**
 * The console pipeline's middleware (gateway/app.ts lists them): consoleErrors renders anything thrown as the admin
 * API's JSON error; consoleAssets serves the page and its bundle; consoleAuth turns the session cookie into the
 * principal (and refuses changes without the session's CSRF token); consoleApi answers sign-in and sign-out and
 * hands everything under /api/v1 to the admin API's own dispatcher, so the console has exactly the admin API's
 * authority rules: a tenant admin sees only what the admin API would show it.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import type { Readable } from 'node:stream';
import type { AccessRecords, ConsoleSessions, DenialLog, PolicyStore, Principal, relationships } from '../../policy/index.ts';
import { logDenial, recordUse } from '../access.ts';
import { AdminStream } from '../admin/call.ts';
import { AdminError, adminErrorBody, invalidInput, toAdminError } from '../admin/errors.ts';
import { MAX_ADMIN_BODY, parseJsonObject } from '../admin/middleware.ts';
import { dispatchAdmin, matchAdminRoute } from '../admin/routes.ts';
import { bodyUnread, closeAfterResponse } from '../http/lingering-close.ts';
import type { OpResult } from '../operation.ts';
import { readLimited } from '../read-limited.ts';
import type { GatewayState } from '../state.ts';
import { utf8Text } from '../utf8.ts';
import { CONSOLE_SECURITY_HEADERS, type ConsoleFile } from './assets.ts';
import { CONSOLE_PREFIX, cookieToken, CSRF_HEADER, sessionCookie, sessionPrincipal, sessionView, signIn } from './session.ts';

type Ctx = ParameterizedContext<GatewayState>;

/** What the console answers with. */
export interface ConsoleDeps {
  policy: PolicyStore;
  denials: DenialLog;
  dataDir: string;
  relationships?: relationships.Relationships;
  records?: AccessRecords;
  sessions: ConsoleSessions;
  /** The built page and bundle by path (empty when the console was never built). */
  assets: Map<string, ConsoleFile>;
}

const API = '/api';
const ADMIN_API = '/api/v1';

/** The path inside the console (`/`, `/assets/app.js`, `/api/session`). */
const consolePath = (ctx: Ctx) => ctx.path.slice(CONSOLE_PREFIX.length) || '';

function json(status: number, body: unknown, headers: Record<string, string> = {}): OpResult {
  return { status, headers: { ...CONSOLE_SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, body: body === undefined ? '' : JSON.stringify(body) };
}

/** What a denial line needs about a console request. */
function facts(ctx: Ctx, action: string) {
  return { requestId: ctx.state.requestId, action, remoteAddress: ctx.req.socket.remoteAddress, userAgent: ctx.get('user-agent') || undefined };
}

/** Renders anything thrown in the console as the admin API's JSON error with the request id (never a stack). */
export function consoleErrors(opts: { log: (line: string) => void }): Middleware<GatewayState> {
  return async function consoleErrorsMiddleware(ctx, next) {
    ctx.state.api = 'Console';
    try {
      await next();
    } catch (thrown) {
      let err = toAdminError(thrown);
      if (!err) {
        opts.log(`request ${ctx.state.requestId} failed: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
        err = new AdminError('InternalError', 'internal error; the request id identifies it in the gateway log');
      }
      // A body refused while it still arrives (over its limit): the answer, then a lingering close, not a stalled read.
      if (bodyUnread(ctx.req)) closeAfterResponse(ctx.res);
      ctx.state.result = { ...json(err.status, undefined), body: adminErrorBody(err, ctx.state.requestId) };
    }
  };
}

/** The whole console when ANVIL_CONSOLE=false: nothing here. */
export function consoleOff(): Middleware<GatewayState> {
  return async function consoleOffMiddleware(ctx) {
    throw new AdminError('NotFound', `the web console is turned off (ANVIL_CONSOLE=false): no ${ctx.path}`);
  };
}

/** The page and its bundle (GET and HEAD); `/_anvil/console` redirects to `/_anvil/console/`. */
export function consoleAssets(assets: Map<string, ConsoleFile>): Middleware<GatewayState> {
  return async function consoleAssetsMiddleware(ctx, next) {
    const path = consolePath(ctx);
    if (path === API || path.startsWith(`${API}/`)) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new AdminError('MethodNotAllowed', `${ctx.method} is not allowed on ${ctx.path}`);
    if (path === '') {
      ctx.state.result = { status: 308, headers: { ...CONSOLE_SECURITY_HEADERS, location: `${CONSOLE_PREFIX}/` } };
      return;
    }
    if (assets.size === 0) throw new AdminError('ServiceUnavailable', 'the console was not built: run npm run build', 503);
    const file = assets.get(path);
    if (file === undefined) throw new AdminError('NotFound', `no console file ${ctx.path}`);
    const headers = { ...CONSOLE_SECURITY_HEADERS, 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache' };
    ctx.state.result = ctx.get('if-none-match') === file.etag ? { status: 304, headers } : { status: 200, headers, body: file.body };
  };
}

/** A JSON object body of at most MAX_ADMIN_BODY bytes; changes must send application/json. */
async function jsonBody(ctx: Ctx): Promise<Record<string, unknown>> {
  const bytes = await readLimited(ctx.req, MAX_ADMIN_BODY, () => new AdminError('PayloadTooLarge', `console request bodies are limited to ${MAX_ADMIN_BODY} bytes`));
  // JSON is UTF-8 (RFC 8259 §8.1); a lossy decode would read a key or name in it as another one's U+FFFD.
  const text = utf8Text(bytes);
  if (text === undefined) throw invalidInput('the body is not valid UTF-8');
  return parseJsonObject(text, ctx.get('content-type'), 'console', true);
}

/**
 * Why a request did not come from the console's own page, or undefined when it may have. Another origin may not
 * make the browser send anything here: Fetch Metadata (where the browser sends it) must say same-origin (or, for a
 * read, none: the address bar), and an Origin header must name this host. A document opened from an object answer is
 * sandboxed (middleware/sandbox.ts): its origin is opaque, so the browser sends `Origin: null` and
 * `Sec-Fetch-Site: cross-site` and it is refused here, though it came from this host.
 */
function foreignOrigin(ctx: Ctx, change: boolean): string | undefined {
  const site = ctx.get('sec-fetch-site');
  if (site !== '' && site !== 'same-origin' && (change || site !== 'none')) return `console request from another origin (Sec-Fetch-Site: ${site})`;
  const origin = ctx.get('origin');
  if (origin === '') return undefined;
  let host: string | undefined;
  try {
    host = origin === 'null' ? undefined : new URL(origin).host;
  } catch {
    host = undefined;
  }
  return host !== undefined && host === ctx.get('host') ? undefined : `console request from another origin (Origin: ${origin.slice(0, 200)})`;
}

const SESSION = `${API}/session`;

/**
 * Every request under /api must come from the console's own origin (foreignOrigin). Sign-in (POST /api/session)
 * needs no session; everything else under /api a valid one, and every change also the session's CSRF token in
 * x-anvil-csrf. The session's principal goes to ctx.state.principal (and the access line).
 */
export function consoleAuth(deps: ConsoleDeps): Middleware<GatewayState> {
  return async function consoleAuthMiddleware(ctx, next) {
    const path = consolePath(ctx);
    const change = ctx.method !== 'GET' && ctx.method !== 'HEAD';
    const deny = (action: string, layer: 'credential' | 'signature', reason: string, principal?: Principal) =>
      logDenial(deps.denials, facts(ctx, action), { layer, reason, principal });
    const foreign = foreignOrigin(ctx, change);
    if (foreign !== undefined) {
      deny(`Console:${ctx.method} ${path}`, 'signature', foreign);
      throw new AdminError('AccessDenied', 'console requests must come from the console itself');
    }
    if (path === SESSION && ctx.method === 'POST') return next();
    const found = await sessionPrincipal(deps.policy, deps.sessions, cookieToken(ctx));
    if (found === undefined) {
      // Asking whether one is signed in is no refusal; anything else without a session is.
      if (!(path === SESSION && ctx.method === 'GET')) deny(`Console:${ctx.method} ${path}`, 'credential', 'console request without a valid session');
      ctx.state.result = json(401, { error: { code: 'Unauthenticated', message: 'sign in to the console', requestId: ctx.state.requestId } }, cookieToken(ctx) ? { 'set-cookie': sessionCookie(ctx, undefined) } : {});
      return;
    }
    if (change && !deps.sessions.csrfMatches(found.session, ctx.get(CSRF_HEADER) || undefined)) {
      deny(`Console:${ctx.method} ${path}`, 'signature', 'console change without the session\'s CSRF token', found.principal);
      throw new AdminError('AccessDenied', `console changes must carry the session's CSRF token in ${CSRF_HEADER}`);
    }
    ctx.state.principal = found.principal;
    ctx.state.consoleSession = found.session;
    await next();
    const renewed = deps.sessions.renew(found.session);
    if (renewed && ctx.state.result && path !== SESSION) ctx.state.result.headers = { ...ctx.state.result.headers, 'set-cookie': sessionCookie(ctx, renewed) };
  };
}

/** Sign-in, sign-out, who is signed in, and the admin API under /api/v1. */
export function consoleApi(deps: ConsoleDeps): Middleware<GatewayState> {
  return async function consoleApiMiddleware(ctx) {
    const path = consolePath(ctx);
    if (path === SESSION) return session(ctx, deps);
    if (path !== ADMIN_API && !path.startsWith(`${ADMIN_API}/`)) throw new AdminError('NotFound', `no console endpoint ${ctx.path}`);
    let adminPath: string;
    try {
      adminPath = decodeURIComponent(path.slice(ADMIN_API.length)) || '/';
    } catch {
      throw invalidInput('the path is not valid percent-encoded UTF-8');
    }
    const principal = ctx.state.principal!;
    if (matchAdminRoute(ctx.method, adminPath).route.textBody && /^text\/plain\b/i.test(ctx.get('content-type'))) {
      throw invalidInput('the console sends application/json; stream files with the anvil CLI');
    }
    const body = ctx.method === 'GET' || ctx.method === 'HEAD' ? {} : await jsonBody(ctx);
    const f = facts(ctx, 'Console');
    const answer = await dispatchAdmin(
      { method: ctx.method, path: adminPath, query: new URLSearchParams(ctx.querystring), body },
      {
        principal,
        policy: deps.policy,
        dataDir: deps.dataDir,
        relationships: deps.relationships,
        denials: deps.denials,
        records: deps.records,
        requestId: ctx.state.requestId,
        header: (name) => ctx.get(name) || undefined,
        callerNow: async () => {
          const now = await sessionPrincipal(deps.policy, deps.sessions, cookieToken(ctx));
          return now ? { ok: true, principal: now.principal } : { ok: false, reason: 'console session expired or its credential can no longer sign in' };
        },
        deny: (action, refusal) => logDenial(deps.denials, { ...f, action }, { ...refusal, principal }),
        used: (family) => recordUse(deps.records, { ...f, principal, family }),
      },
    );
    if (answer.body instanceof AdminStream) {
      endWithSession(answer.body.stream, () => sessionPrincipal(deps.policy, deps.sessions, cookieToken(ctx)));
      ctx.state.result = { status: answer.status, headers: { ...CONSOLE_SECURITY_HEADERS, 'content-type': answer.body.contentType, 'cache-control': 'no-store', 'x-accel-buffering': 'no' }, body: answer.body.stream };
    } else ctx.state.result = json(answer.status, answer.body);
  };
}

/** How often an open stream (the watch feed) checks that its session still stands. */
export const STREAM_RECHECK_MS = 5000;

/**
 * Ends a stream once its session does: expired, or its credential revoked, rotated or disabled since the stream
 * opened. A feed outlives no authority, however long the browser keeps it open.
 */
function endWithSession(stream: Readable, current: () => Promise<unknown>): void {
  const timer = setInterval(() => {
    current().then((found) => {
      if (found === undefined) stream.destroy();
    }, () => stream.destroy());
  }, STREAM_RECHECK_MS);
  timer.unref();
  stream.once('close', () => clearInterval(timer));
}

/** POST /api/session {accessKeyId, secretKey}: sign in; GET: who is signed in; DELETE: sign out (on every node). */
async function session(ctx: Ctx, deps: ConsoleDeps): Promise<void> {
  if (ctx.method === 'GET') {
    const current = ctx.state.consoleSession!;
    ctx.state.result = json(200, sessionView(ctx.state.principal!, deps.sessions.csrf(current), new Date(current.expiresAt)));
  } else if (ctx.method === 'DELETE') {
    // Recorded before the answer, so the session is over wherever its token (or a copy) is presented next.
    await deps.sessions.signOut(ctx.state.consoleSession!, ctx.state.principal!.tenant);
    ctx.state.result = json(200, { signedOut: true }, { 'set-cookie': sessionCookie(ctx, undefined) });
  } else if (ctx.method === 'POST') {
    const body = await jsonBody(ctx);
    const { accessKeyId, secretKey } = body;
    if (typeof accessKeyId !== 'string' || accessKeyId === '' || typeof secretKey !== 'string' || secretKey === '' || Object.keys(body).length !== 2) {
      throw invalidInput('sign in with {"accessKeyId", "secretKey"}');
    }
    const outcome = await signIn(deps, accessKeyId, secretKey);
    if (!outcome.ok) {
      logDenial(deps.denials, facts(ctx, 'Console:SignIn'), { ...outcome.failure, accessKeyId });
      throw new AdminError('InvalidCredentials', 'the access key or the secret is wrong, or the credential cannot be used', 401);
    }
    ctx.state.principal = outcome.principal;
    const view = sessionView(outcome.principal, outcome.issued.csrf, outcome.issued.expiresAt);
    ctx.state.result = json(200, view, { 'set-cookie': sessionCookie(ctx, outcome.issued) });
  } else throw new AdminError('MethodNotAllowed', `${ctx.method} is not allowed on ${ctx.path}`);
}
