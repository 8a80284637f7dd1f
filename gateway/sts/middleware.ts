/**
 * The STS endpoint and the session-token keys, answered before S3 addressing: `POST /` with a form body is an STS
 * call (S3 has no such operation), and `GET /_anvil/keys` publishes the JWKS that session tokens verify against.
 * STS requests end here, with STS's XML answer or ErrorResponse.
 */
import { createHash } from 'node:crypto';
import type { Middleware, ParameterizedContext } from 'koa';
import { isPolicyUnavailable, SessionError, type DenialLog, type DenialLayer, type PolicyStore } from '../../policy/index.ts';
import { logDenial } from '../access.ts';
import { signedWith, verifySigV4 } from '../auth/sigv4.ts';
import { S3Error } from '../errors.ts';
import { closeAfterResponse } from '../http/lingering-close.ts';
import { signedRequestOf } from '../middleware/authenticate.ts';
import { continueIfExpected } from '../middleware/authorize.ts';
import { readLimited } from '../read-limited.ts';
import type { GatewayState } from '../state.ts';
import { nonUtf8QueryParam, utf8Text } from '../utf8.ts';
import { requireHonoured, STS_ACTIONS } from './actions.ts';
import { callerLookup, type ResolvedCaller } from './callers.ts';
import { SESSION_ERROR_CODES, SIGNATURE_ERROR_CODES, StsError, stsErrorBody, stsResponse } from './errors.ts';
import type { TokenStores } from './stores.ts';

/** Where the session-token JWKS is published. */
export const KEYS_PATH = '/_anvil/keys';
/** Largest STS form body accepted. */
export const MAX_STS_BODY = 64 * 1024;
const STS_VERSION = '2011-06-15';

type Ctx = ParameterizedContext<GatewayState>;

/** Whether a request is an STS call: POST to the service root (not a virtual-hosted bucket) with a form body. */
export function isStsRequest(ctx: Ctx, domain: string): boolean {
  if (ctx.method !== 'POST' || ctx.path !== '/') return false;
  if (!/^application\/x-www-form-urlencoded\b/i.test(ctx.get('content-type'))) return false;
  const host = ctx.get('host').replace(/:\d+$/, '').toLowerCase();
  return !(domain && host.endsWith(`.${domain}`));
}

function readBody(ctx: Ctx): Promise<Buffer> {
  return readLimited(ctx.req, MAX_STS_BODY, () => new StsError('ValidationError', `STS request bodies are limited to ${MAX_STS_BODY} bytes`));
}

export function stsApi(opts: {
  policy: PolicyStore;
  denials: DenialLog;
  region: string;
  domain: string;
  stores: TokenStores;
  log: (line: string) => void;
}): Middleware<GatewayState> {
  const { policy, denials, region, stores } = opts;
  const deps = { store: stores.sessions, tokens: stores.tokens };

  /** Verifies the SigV4 signature (service sts) over the form body, which SDKs sign without x-amz-content-sha256. */
  async function authenticateSts(ctx: Ctx, body: Buffer, refuse: (layer: DenialLayer, reason: string, accessKeyId?: string) => void): Promise<ResolvedCaller> {
    const request = signedRequestOf(ctx.method, ctx.req.url ?? '/', ctx.req.rawHeaders);
    const bodyHash = createHash('sha256').update(body).digest('hex');
    const declared = ctx.get('x-amz-content-sha256');
    if (declared !== '' && declared.toLowerCase() !== bodyHash) {
      // A body that is not the one signed is a refused signature, with its denial line as every other.
      refuse('signature', 'XAmzContentSHA256Mismatch: the body is not the one x-amz-content-sha256 declares');
      throw new StsError('IncompleteSignature', 'STS requests must sign their body');
    }
    const now = new Date();
    const { lookupSecrets, result } = callerLookup({ policy, tokens: stores.tokens, request, now });
    try {
      const auth = await verifySigV4(request, { region, now, services: ['sts'], lookupSecrets, bodySha256: bodyHash });
      if (!auth) throw new StsError('MissingAuthenticationToken', 'Request is missing Authentication Token');
      const caller = result.caller!;
      const secret = caller.secrets?.find((s) => signedWith(auth, s));
      return secret === undefined ? caller : { ...caller, secret };
    } catch (err) {
      if (err instanceof StsError) {
        refuse('signature', 'anonymous request');
        throw err;
      }
      if (!(err instanceof S3Error)) throw err;
      const failure = result.failure;
      refuse(failure?.layer ?? 'signature', failure?.reason ?? `${err.code}: ${err.message}`, failure?.accessKeyId ?? result.caller?.principal.accessKeyId);
      throw new StsError(SIGNATURE_ERROR_CODES[err.code] ?? 'IncompleteSignature', err.message);
    }
  }

  return async function stsMiddleware(ctx, next) {
    if (ctx.method === 'GET' && ctx.path === KEYS_PATH) {
      // Public keys only; caches may keep them briefly, rotation keeps old keys published while they still verify.
      ctx.state.result = {
        status: 200,
        headers: { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=300' },
        body: JSON.stringify(await stores.sessions.publicKeys()),
      };
      return;
    }
    if (!isStsRequest(ctx, opts.domain)) return next();
    const facts = { requestId: ctx.state.requestId, action: 'STS', remoteAddress: ctx.req.socket.remoteAddress, userAgent: ctx.get('user-agent') || undefined };
    const refuse = (layer: DenialLayer, reason: string, accessKeyId?: string) => logDenial(denials, facts, { layer, reason, accessKeyId });
    try {
      // STS signs its form body: nothing can be authorized before it is read.
      continueIfExpected(ctx);
      const body = await readBody(ctx);
      // Strictly UTF-8, escapes included: a session policy or name spelled with bytes that are not UTF-8 must not be
      // read as the U+FFFD a lossy decode (URLSearchParams') would put in their place.
      const form = utf8Text(body);
      const bad = form === undefined ? 'body' : nonUtf8QueryParam(form);
      if (bad !== undefined) throw new StsError('InvalidParameterValue', `The ${bad === 'body' ? 'request body' : `parameter ${bad}`} is not valid UTF-8`);
      const params = new URLSearchParams(form);
      const name = params.get('Action');
      if (!name) throw new StsError('MissingAction', 'Missing Action');
      facts.action = `STS:${name}`;
      const action = Object.hasOwn(STS_ACTIONS, name) ? STS_ACTIONS[name]! : undefined;
      if (!action) throw new StsError('InvalidAction', `Could not find operation ${name} for version ${STS_VERSION}`);
      const version = params.get('Version');
      if (version !== null && version !== STS_VERSION) throw new StsError('InvalidAction', `Could not find operation ${name} for version ${version}`);
      requireHonoured(action, params);
      const caller = action.signed ? await authenticateSts(ctx, body, refuse) : undefined;
      try {
        const result = await action.run({ params, deps, caller, now: new Date() });
        ctx.state.result = { status: 200, headers: { 'content-type': 'text/xml' }, body: stsResponse(name, result, ctx.state.requestId) };
      } catch (err) {
        if (!(err instanceof SessionError)) throw err;
        const layer: DenialLayer = err.kind === 'denied' ? 'scope' : 'credential';
        if (err.kind === 'denied' || err.kind.endsWith('identity_token')) {
          logDenial(denials, facts, { layer, reason: err.detail, principal: caller?.principal });
        }
        throw new StsError(SESSION_ERROR_CODES[err.kind], err.message);
      }
    } catch (thrown) {
      let err = thrown instanceof StsError ? thrown : undefined;
      // The policy database cannot be reached: 503 with Retry-After, as on every other surface (error-mapping.ts).
      if (!err && isPolicyUnavailable(thrown)) err = new StsError('ServiceUnavailable', 'the policy database cannot be reached: retry shortly');
      if (!err) {
        opts.log(`request ${ctx.state.requestId} failed: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
        err = new StsError('InternalFailure', 'internal error; the request id identifies it in the gateway log');
      }
      if (!ctx.req.readableEnded) closeAfterResponse(ctx.res);
      const headers: Record<string, string> = { 'content-type': 'text/xml' };
      if (err.status === 503) headers['retry-after'] = '1';
      ctx.state.result = { status: err.status, headers, body: stsErrorBody(err, ctx.state.requestId) };
    }
  };
}
