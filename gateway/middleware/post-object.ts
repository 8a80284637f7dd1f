/**
 * Authentication of browser form uploads (POST Object): the credential, date, signature and policy arrive as form
 * fields before the file, so they are read here, ahead of the usual authentication, with busboy (bounded: S3 allows
 * 20 KB of fields before the file). A valid SigV4 POST signature from a live credential or session makes the signer
 * the principal and the form's key the request's key, so authorization decides the key actually written, with
 * every layer (scopes, tenant, reserved prefix, relationships) exactly as for PutObject.
 */
import busboy from 'busboy';
import type { Middleware, Next, ParameterizedContext } from 'koa';
import { Readable } from 'node:stream';
import type { DenialLog, PolicyStore, SessionTokens } from '../../policy/index.ts';
import { logDenial } from '../access.ts';
import { keyError } from '../addressing.ts';
import { signV2 } from '../auth/sigv2.ts';
import { deriveSigningKey, sign, signaturesEqual, ALGORITHM, type SignedRequest } from '../auth/sigv4.ts';
import { S3Error } from '../errors.ts';
import { checkPostPolicy, type FormFields, type PolicyLimits } from '../post-policy.ts';
import { refuseUnsupportedFeatures } from '../request-features.ts';
import type { GatewayState } from '../state.ts';
import { callerLookup } from '../sts/callers.ts';
import { utf8Text } from '../utf8.ts';

/** Most bytes of form fields before the file (S3: 20 KB). */
const MAX_FIELD_BYTES = 20 * 1024;

/** Form fields standing for request headers (`acl` is x-amz-acl), for the feature check every write passes. */
function formHeaders(fields: FormFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (name === 'acl') out['x-amz-acl'] = value;
    else if (name.startsWith('x-amz-')) out[name] = value;
  }
  return out;
}

/** What busboy decodes bytes that are not UTF-8 to. */
const REPLACEMENT = '\uFFFD';

/** Most form parts before the file; each may be a field or a part with a filename (python-requests sends those). */
const MAX_FIELDS = 100;

/**
 * Reads the fields up to the file; the file stream is handed back paused. The file is the part NAMED `file`, as the
 * POST Object reference defines it ("file: File or text content. The file or content must be the last field in the
 * form. Any fields below it are ignored."): any other part is a field, whether or not it carries a filename (HTML
 * forms send none, python-requests sends one for every part), and parts after the file are ignored.
 */
function readForm(req: NodeJS.ReadableStream & { headers: Record<string, unknown> }): Promise<{ fields: FormFields; file: Readable; filename: string; fileType?: string }> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      // Field names and file names in Content-Disposition are read as UTF-8, as browsers and urllib3 2.x send them raw
      // (WHATWG HTML, "multipart/form-data encoding algorithm"; RFC 7578 §4.2), busboy's default being latin1;
      // `filename*=utf-8''…` (RFC 5987) is decoded by busboy and preferred when present.
      bb = busboy({ headers: req.headers as busboy.BusboyConfig["headers"], defParamCharset: 'utf8', limits: { fieldSize: MAX_FIELD_BYTES, fields: MAX_FIELDS, files: MAX_FIELDS + 1, parts: MAX_FIELDS + 1 } });
    } catch {
      reject(new S3Error('MalformedPOSTRequest'));
      return;
    }
    const fields: FormFields = new Map();
    let size = 0;
    let done = false;
    // Field parts with a filename are read as streams; the file waits until every one before it has ended.
    let pending = 0;
    let upload: (() => void) | undefined;
    const fail = (err: S3Error) => {
      if (done) return;
      done = true;
      req.unpipe(bb);
      reject(err);
    };
    const tooLarge = () => fail(new S3Error('MalformedPOSTRequest', 'Your POST request fields preceding the upload file were too large.'));
    const notUtf8 = () => fail(new S3Error('MalformedPOSTRequest', 'The form field names, values and file name of your POST request must be UTF-8.'));
    // A field given twice (any case) is refused, as a repeated header, query parameter or trailer is: the policy
    // would be checked on one copy of, say, `key` or `Content-Type`, while a reader of the form may take the other.
    const setField = (name: string, value: string): boolean => {
      const lower = name.toLowerCase();
      if (fields.has(lower)) {
        fail(new S3Error('InvalidArgument', `The POST form field ${name} must not be given more than once.`, { fields: { ArgumentName: name } }));
        return false;
      }
      fields.set(lower, value);
      return true;
    };
    const settled = () => {
      if (pending === 0 && upload && !done) {
        done = true;
        upload();
      }
    };
    bb.on('field', (name, value, info) => {
      if (done || upload) return;
      if (info.valueTruncated) return tooLarge();
      // busboy has decoded the name and value already, bytes that are not UTF-8 to U+FFFD; a key spelled with one
      // could be either (and name an object `pf/\uFFFD` nobody meant), so U+FFFD is refused in what busboy decodes.
      if (name.includes(REPLACEMENT) || value.includes(REPLACEMENT)) return notUtf8();
      if (name.toLowerCase() === 'file') {
        // A text field named file is the content itself ("File or text content").
        upload = () => resolve({ fields, file: Readable.from([Buffer.from(value)]), filename: '' });
        return settled();
      }
      size += name.length + value.length;
      if (size > MAX_FIELD_BYTES) return tooLarge();
      setField(name, value);
    });
    bb.on('file', (name, stream, info) => {
      if (done || upload) return stream.resume();
      if (name.includes(REPLACEMENT) || (name.toLowerCase() === 'file' && info.filename?.includes(REPLACEMENT))) {
        stream.resume();
        return notUtf8();
      }
      if (name.toLowerCase() === 'file') {
        stream.pause();
        upload = () => resolve({ fields, file: stream, filename: info.filename ?? '', fileType: info.mimeType });
        return settled();
      }
      pending++;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_FIELD_BYTES) tooLarge();
        else chunks.push(chunk);
      });
      stream.on('end', () => {
        pending--;
        if (done) return;
        size += name.length;
        if (size > MAX_FIELD_BYTES) return tooLarge();
        const value = utf8Text(Buffer.concat(chunks));
        if (value === undefined) return notUtf8();
        if (!setField(name, value)) return;
        settled();
      });
    });
    bb.on('filesLimit', tooLarge);
    bb.on('fieldsLimit', tooLarge);
    bb.on('partsLimit', tooLarge);
    bb.on('error', () => fail(new S3Error('MalformedPOSTRequest')));
    bb.on('close', () => {
      if (!upload) fail(new S3Error('IncorrectNumberOfFilesInPostRequest'));
    });
    req.pipe(bb);
  });
}

/** Verifies the POST policy signature and resolves the signer, or throws the S3 error and writes the denial. */
export function postObjectAuth(opts: { policy: PolicyStore; denials: DenialLog; region: string; tokens: SessionTokens; sigV2?: boolean }): Middleware<GatewayState> {
  // Not async for every other request: they are handed on without one more promise.
  return function postObjectMiddleware(ctx, next) {
    return ctx.state.route?.op === 'PostObject' ? postObject(ctx, next) : next();
  };

  async function postObject(ctx: ParameterizedContext<GatewayState>, next: Next): Promise<void> {
    const target = ctx.state.target!;
    const facts = { requestId: ctx.state.requestId, action: 'PostObject', remoteAddress: ctx.req.socket.remoteAddress, userAgent: ctx.get('user-agent') || undefined };
    const refuse = (reason: string, accessKeyId?: string, code: 'AccessDenied' | 'SignatureDoesNotMatch' = 'AccessDenied'): never => {
      logDenial(opts.denials, facts, { layer: 'signature', reason, accessKeyId, bucket: target.bucket });
      throw new S3Error(code, code === 'AccessDenied' ? reason : undefined);
    };
    if (!/^multipart\/form-data/i.test(ctx.get('content-type'))) {
      throw new S3Error('InvalidArgument', 'POST requires exactly one file upload per request.', { fields: { ArgumentName: 'Content-Type' } });
    }
    const form = await readForm(ctx.req);
    const f = (name: string) => form.fields.get(name);
    const missing = (field: string): never => {
      form.file.resume();
      logDenial(opts.denials, facts, { layer: 'signature', reason: `POST form without ${field}`, bucket: target.bucket });
      throw new S3Error('InvalidArgument', `Bucket POST must contain a field named '${field}'.  If it is specified, please check the order of the fields.`, { fields: { ArgumentName: field } });
    };
    const policy = f('policy') ?? missing('policy');
    const now = new Date();
    // SigV4 POST (x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-signature) or, where enabled, SigV2 POST
    // (AWSAccessKeyId, signature: base64 HMAC-SHA1 of the policy), as the two S3 browser-upload references define.
    let ak: string;
    let verify: (secret: string) => boolean;
    if (f('x-amz-algorithm') !== undefined || !opts.sigV2) {
      if (f('x-amz-algorithm') !== ALGORITHM) throw new S3Error('InvalidArgument', 'Only AWS4-HMAC-SHA256 POST policies are supported', { fields: { ArgumentName: 'x-amz-algorithm' } });
      const credential = f('x-amz-credential') ?? missing('x-amz-credential');
      const signature = f('x-amz-signature') ?? missing('x-amz-signature');
      const date = f('x-amz-date') ?? missing('x-amz-date');
      const [key, day, region, service, terminal] = credential.split('/');
      if (!key || !day || region !== opts.region || service !== 's3' || terminal !== 'aws4_request' || !date.startsWith(day)) {
        throw new S3Error('InvalidArgument', 'Invalid x-amz-credential or x-amz-date', { fields: { ArgumentName: 'x-amz-credential' } });
      }
      ak = key;
      verify = (secret) => signaturesEqual(sign(deriveSigningKey(secret, { date: day, region, service }), policy), signature);
    } else {
      ak = f('awsaccesskeyid') ?? missing('AWSAccessKeyId');
      const signature = f('signature') ?? missing('Signature');
      verify = (secret) => signaturesEqual(signV2(secret, policy), signature);
    }
    const token = f('x-amz-security-token');
    const request: SignedRequest = { method: 'POST', rawPath: target.rawPath, rawQuery: '', headers: token !== undefined ? [['x-amz-security-token', token]] : [] };
    const { lookupSecrets, result } = callerLookup({ policy: opts.policy, tokens: opts.tokens, request, now });
    const secrets = await lookupSecrets(ak);
    if (!secrets?.length) {
      form.file.resume();
      logDenial(opts.denials, facts, { layer: result.failure?.layer ?? 'credential', reason: result.failure?.reason ?? 'unknown access key', accessKeyId: ak, tenant: result.failure?.tenant, bucket: target.bucket });
      throw new S3Error('InvalidAccessKeyId', undefined, { fields: { AWSAccessKeyId: ak } });
    }
    let valid = false;
    for (const secret of secrets) if (verify(secret)) valid = true;
    if (!valid) {
      form.file.resume();
      // S3 answers a POST whose policy signature does not verify as any other bad signature.
      refuse('POST policy signature does not match', ak, 'SignatureDoesNotMatch');
    }
    let limits: PolicyLimits;
    try {
      limits = checkPostPolicy(policy, form.fields, target.bucket, now, form.filename);
      refuseUnsupportedFeatures('PostObject', formHeaders(form.fields), new URLSearchParams());
    } catch (err) {
      form.file.resume();
      if (err instanceof S3Error && err.code === 'AccessDenied') refuse(err.message, ak);
      throw err;
    }
    const key = (f('key') ?? missing('key')).replaceAll('${filename}', form.filename);
    const invalid = keyError(key);
    if (invalid) {
      form.file.resume();
      throw new S3Error(invalid.code, invalid.message);
    }
    target.key = key;
    ctx.state.principal = result.caller!.principal;
    ctx.state.postForm = { ...form, limits };
    await next();
  }
}
