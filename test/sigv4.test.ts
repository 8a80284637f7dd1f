/**
 * SigV4 canonicalization and verification against the shared vectors (/work/shared/testdata/sigv4), their tamper
 * expectations, and the S3 error each malformed request must produce.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  canonicalRequest, deriveSigningKey, sign, stringToSign, sha256Hex, verifySigV4, authLocation, formatAmzDate,
  type SignedRequest, type VerifyOptions,
} from '../gateway/auth/sigv4.ts';
import { S3Error } from '../gateway/errors.ts';

// The shared test data sits beside the repository (../shared), wherever it is cloned.
const DIR = fileURLToPath(new URL('../../shared/testdata/sigv4', import.meta.url));

interface Vector {
  name: string;
  signature_location: 'header' | 'query';
  applies_to_s3: boolean;
  s3_caveats: Array<{ tag: string }>;
  canonicalization: { hashed_payload: string; hashed_payload_source: string };
  credentials: { access_key_id: string; secret_access_key: string; session_token: string | null; region: string; service: string; amz_date: string; timestamp: string };
  signed_request: { method: string; path: string; query: string; headers: Array<[string, string]>; body: { encoding: 'utf8' | 'base64'; data: string } };
  expected: { canonical_request: string; string_to_sign: string; signature: string; authorization_compact?: string };
  tamper_expectations: Record<'path' | 'query' | 'signed_header' | 'body', string>;
}

const index = JSON.parse(readFileSync(join(DIR, 'index.json'), 'utf8')) as { cases: Array<{ file: string; applies_to_s3: boolean }> };
const all: Vector[] = index.cases.map((c) => JSON.parse(readFileSync(join(DIR, c.file), 'utf8')));
const s3Vectors = all.filter((v) => v.applies_to_s3);

const tags = (v: Vector) => v.s3_caveats.map((c) => c.tag);
const bodyOf = (v: Vector) => Buffer.from(v.signed_request.body.data, v.signed_request.body.encoding);
/** Header values as an HTTP parser hands them over: surrounding whitespace stripped. */
const trimmed = (h: Array<[string, string]>) => h.map(([n, val]) => [n, val.trim()] as [string, string]);

function signedHeadersOf(v: Vector): string[] {
  const sr = v.signed_request;
  if (v.signature_location === 'query') {
    return decodeURIComponent(/X-Amz-SignedHeaders=([^&]*)/.exec(sr.query)![1]).split(';');
  }
  const auth = sr.headers.find(([n]) => n.toLowerCase() === 'authorization')![1];
  return /SignedHeaders=([^,]*)/.exec(auth)![1].split(';');
}

function optionsFor(v: Vector, extra: Partial<VerifyOptions> = {}): VerifyOptions {
  const c = v.credentials;
  return {
    lookupSecrets: async (ak) => (ak === c.access_key_id ? [c.secret_access_key] : undefined),
    now: new Date(c.timestamp),
    region: c.region,
    services: [c.service],
    ...extra,
  };
}

/** The verifier's view of a vector: its request exactly as signed. */
function requestOf(v: Vector): SignedRequest {
  const headers = trimmed(v.signed_request.headers);
  return { method: v.signed_request.method, rawPath: v.signed_request.path, rawQuery: v.signed_request.query, headers };
}

/**
 * Generic vectors sign SHA-256 of the body and send no x-amz-content-sha256, which S3 requires: the verifier is given
 * the body's hash instead (as STS does for its form bodies), which reproduces their canonical request. Adding the
 * header unsigned would now be refused, as every unsigned x-amz-* header is.
 */
function bodyOptions(v: Vector, body: Buffer): Partial<VerifyOptions> {
  return tags(v).includes('missing-x-amz-content-sha256') ? { bodySha256: sha256Hex(body) } : {};
}

async function outcome(v: Vector, req: SignedRequest, body: Buffer): Promise<string> {
  try {
    const auth = await verifySigV4(req, optionsFor(v, bodyOptions(v, body)));
    if (!auth) return 'anonymous';
    if (auth.payload.mode === 'signed' && auth.payload.sha256Hex !== sha256Hex(body)) return 'payload-hash-mismatch';
    return 'accepted';
  } catch (err) {
    if (err instanceof S3Error && err.code === 'SignatureDoesNotMatch') return 'signature-mismatch';
    throw err;
  }
}

for (const v of s3Vectors) {
  test(`canonical request, string to sign, signature: ${v.name}`, (t) => {
    const sr = v.signed_request;
    const canonical = canonicalRequest({
      method: sr.method, rawPath: sr.path, rawQuery: sr.query, headers: trimmed(sr.headers),
      signedHeaders: signedHeadersOf(v), payloadHash: v.canonicalization.hashed_payload,
      presigned: v.signature_location === 'query',
    });
    t.is(canonical, v.expected.canonical_request);
    const scope = `${v.credentials.amz_date.slice(0, 8)}/${v.credentials.region}/${v.credentials.service}/aws4_request`;
    const sts = stringToSign(v.credentials.amz_date, scope, canonical);
    t.is(sts, v.expected.string_to_sign);
    const key = deriveSigningKey(v.credentials.secret_access_key, { date: scope.slice(0, 8), region: v.credentials.region, service: v.credentials.service });
    t.is(sign(key, sts), v.expected.signature);
  });

  const tamperable = !tags(v).includes('session-token-not-signed');
  test(`verifier accepts and detects tampering: ${v.name}`, async (t) => {
    const body = bodyOf(v);
    const chunked = tags(v).includes('aws-chunked-body');
    const base = requestOf(v);
    if (!tamperable) {
      const err = await t.throwsAsync(verifySigV4(base, optionsFor(v, bodyOptions(v, body))), { instanceOf: S3Error });
      t.is(err?.code, 'AccessDenied');
      t.is(err?.fields.HeadersNotSigned, 'x-amz-security-token');
      return;
    }
    const auth = await verifySigV4(base, optionsFor(v, bodyOptions(v, body)));
    t.truthy(auth);
    t.is(auth!.location, v.signature_location);
    t.is(auth!.signature, v.expected.signature);
    t.is(auth!.amzDate, v.credentials.amz_date);
    t.is(auth!.sessionToken ?? null, v.credentials.session_token);
    if (v.expected.authorization_compact) {
      const compact = base.headers.map(([n, val]) => [n, n.toLowerCase() === 'authorization' ? v.expected.authorization_compact! : val] as [string, string]);
      t.truthy(await verifySigV4({ ...base, headers: compact }, optionsFor(v, bodyOptions(v, body))));
    }
    const exp = v.tamper_expectations;
    t.is(await outcome(v, { ...base, rawPath: `${base.rawPath}x` }, body), exp.path, 'path');
    t.is(await outcome(v, { ...base, rawQuery: base.rawQuery ? `${base.rawQuery}&tamper=1` : 'tamper=1' }, body), exp.query, 'query');
    const hostTampered = base.headers.map(([n, val]) => [n, n.toLowerCase() === 'host' ? `${val}x` : val] as [string, string]);
    t.is(await outcome(v, { ...base, headers: hostTampered }, body), exp.signed_header, 'signed header');
    if (!chunked) {
      const tampered = body.length === 0 ? Buffer.from('x') : Buffer.from(body);
      if (body.length > 0) tampered[tampered.length - 1] ^= 1;
      const got = await outcome(v, requestOf(v), tampered);
      t.is(got, exp.body === 'not-detected' ? 'accepted' : exp.body, 'body');
    }
    // A flipped signature byte must fail too.
    const sig = v.expected.signature;
    const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    const badSig = v.signature_location === 'query'
      ? { ...base, rawQuery: base.rawQuery.replace(sig, flipped) }
      : { ...base, headers: base.headers.map(([n, val]) => [n, val.replace(sig, flipped)] as [string, string]) };
    t.is(await outcome(v, badSig, body), 'signature-mismatch', 'signature byte');
  });
}

test('all 68 S3-applicable vectors are exercised', (t) => {
  t.is(s3Vectors.length, 68);
});

// --- error cases, built on the S3 GET Object example ----------------------------------------------------------

const getObject = all.find((v) => v.name === 's3-api-reference/get-object-range')!;
const presigned = all.find((v) => v.name === 's3-api-reference/presigned-get-object')!;

async function code(req: SignedRequest, opts: VerifyOptions): Promise<string | undefined> {
  try {
    await verifySigV4(req, opts);
    return undefined;
  } catch (err) {
    return err instanceof S3Error ? err.code : String(err);
  }
}

const withAuth = (req: SignedRequest, fn: (a: string) => string): SignedRequest => ({
  ...req,
  headers: req.headers.map(([n, val]) => [n, n.toLowerCase() === 'authorization' ? fn(val) : val] as [string, string]),
});

test('anonymous requests return undefined', async (t) => {
  const req = { method: 'GET', rawPath: '/b/k', rawQuery: 'versionId=1', headers: [['Host', 'x']] as Array<[string, string]> };
  t.is(await verifySigV4(req, optionsFor(getObject)), undefined);
  t.is(authLocation(req), undefined);
  t.is(authLocation(requestOf(getObject)), 'header');
  t.is(authLocation(requestOf(presigned)), 'query');
});

test('header auth errors map to S3 codes', async (t) => {
  const base = requestOf(getObject);
  const opts = optionsFor(getObject);
  t.is(await code(base, { ...opts, lookupSecrets: async () => undefined }), 'InvalidAccessKeyId');
  t.is(await code(base, { ...opts, region: 'eu-west-1' }), 'AuthorizationHeaderMalformed');
  t.is(await code(base, { ...opts, services: ['sts'] }), 'AuthorizationHeaderMalformed');
  t.is(await code(base, { ...opts, now: new Date(Date.parse(getObject.credentials.timestamp) + 16 * 60_000) }), 'RequestTimeTooSkewed');
  t.is(await code(base, { ...opts, now: new Date(Date.parse(getObject.credentials.timestamp) - 16 * 60_000) }), 'RequestTimeTooSkewed');
  t.is(await code(base, { ...opts, now: new Date(Date.parse(getObject.credentials.timestamp) + 14 * 60_000) }), undefined);
  t.is(await code(withAuth(base, (a) => a.replace(/, Signature=[0-9a-f]+/, '')), opts), 'AuthorizationHeaderMalformed');
  t.is(await code(withAuth(base, (a) => a.replace('/aws4_request', '/aws5_request')), opts), 'AuthorizationHeaderMalformed');
  t.is(await code(withAuth(base, (a) => a.replace('SignedHeaders=host;', 'SignedHeaders=')), opts), 'AuthorizationHeaderMalformed');
  t.is(await code(withAuth(base, () => 'AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg='), opts), 'InvalidRequest');
  t.is(await code(withAuth(base, () => 'Bearer abc'), opts), 'InvalidArgument');
  t.is(await code({ ...base, rawQuery: 'X-Amz-Algorithm=AWS4-HMAC-SHA256' }, opts), 'InvalidArgument');
  // Rotation grace period: the old secret first, the current one second.
  t.truthy(await verifySigV4(base, { ...opts, lookupSecrets: async () => ['old-secret', getObject.credentials.secret_access_key] }));
  t.is(await code(base, { ...opts, lookupSecrets: async () => ['old-secret'] }), 'SignatureDoesNotMatch');
});

test('header auth requires x-amz-content-sha256 with a valid value', async (t) => {
  const base = requestOf(getObject);
  const opts = optionsFor(getObject);
  const without = { ...base, headers: base.headers.filter(([n]) => n !== 'x-amz-content-sha256') };
  const err = await t.throwsAsync(verifySigV4(without, opts), { instanceOf: S3Error });
  t.is(err?.code, 'InvalidRequest');
  t.is(err?.message, 'Missing required header for this request: x-amz-content-sha256');
  const bogus = { ...base, headers: base.headers.map(([n, val]) => [n, n === 'x-amz-content-sha256' ? 'NOPE' : val] as [string, string]) };
  t.is(await code(bogus, opts), 'InvalidArgument');
});

test('header auth accepts the Date header when x-amz-date is absent', async (t) => {
  const secret = 'secret';
  const headers: Array<[string, string]> = [['Host', 'h'], ['Date', 'Fri, 24 May 2013 00:00:00 GMT'], ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD']];
  const signedHeaders = ['date', 'host', 'x-amz-content-sha256'];
  const req = { method: 'PUT', rawPath: '/b/a%20b', rawQuery: '', headers };
  const scope = '20130524/us-east-1/s3/aws4_request';
  const sts = stringToSign('20130524T000000Z', scope, canonicalRequest({ ...req, signedHeaders, payloadHash: 'UNSIGNED-PAYLOAD' }));
  const sig = sign(deriveSigningKey(secret, { date: '20130524', region: 'us-east-1', service: 's3' }), sts);
  headers.push(['Authorization', `AWS4-HMAC-SHA256 Credential=AK/${scope},SignedHeaders=${signedHeaders.join(';')},Signature=${sig}`]);
  const auth = await verifySigV4(req, { lookupSecrets: async () => [secret], now: new Date('2013-05-24T00:05:00Z'), region: 'us-east-1' });
  t.deepEqual(auth?.payload, { mode: 'unsigned' });
  t.is(auth?.amzDate, '20130524T000000Z');
});

test('presigned errors: expiry, limits, unsigned headers, region', async (t) => {
  const base = requestOf(presigned);
  const opts = optionsFor(presigned);
  const start = Date.parse(presigned.credentials.timestamp);
  t.truthy(await verifySigV4(base, { ...opts, now: new Date(start + 86_400_000) }));
  const expired = await t.throwsAsync(verifySigV4(base, { ...opts, now: new Date(start + 86_401_000) }), { instanceOf: S3Error });
  t.is(expired?.code, 'AccessDenied');
  t.is(expired?.message, 'Request has expired');
  t.is(await code(base, { ...opts, now: new Date(start - 60 * 60_000) }), 'AccessDenied');
  t.is(await code({ ...base, rawQuery: base.rawQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=604801') }, opts), 'AuthorizationQueryParametersError');
  t.is(await code({ ...base, rawQuery: base.rawQuery.replace('X-Amz-Expires=86400', 'X-Amz-Expires=abc') }, opts), 'AuthorizationQueryParametersError');
  t.is(await code({ ...base, rawQuery: base.rawQuery.replace('X-Amz-Expires=86400&', '') }, opts), 'AuthorizationQueryParametersError');
  t.is(await code({ ...base, rawQuery: base.rawQuery.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256') }, opts), 'AuthorizationQueryParametersError');
  t.is(await code(base, { ...opts, region: 'eu-west-1' }), 'AuthorizationQueryParametersError');
  t.is(await code({ ...base, headers: [...base.headers, ['x-amz-acl', 'public-read']] }, opts), 'AccessDenied');
  t.is(await code({ ...base, rawQuery: base.rawQuery.replace('X-Amz-Algorithm', 'AWSAccessKeyId=AK&Signature=x&X-Amz-Algorithm') }, opts), 'SignatureDoesNotMatch');
  t.is(await code({ ...base, rawQuery: 'AWSAccessKeyId=AK&Signature=x&Expires=1' }, opts), 'InvalidRequest');
  t.is(await code(base, { ...opts, lookupSecrets: async () => ['old-secret'] }), 'SignatureDoesNotMatch');
  t.truthy(await verifySigV4(base, { ...opts, lookupSecrets: async () => ['old-secret', presigned.credentials.secret_access_key] }));
});

test('presigned session token is part of the canonical query', async (t) => {
  const secret = 'secret';
  const now = new Date('2024-01-02T03:04:05Z');
  const amzDate = formatAmzDate(now);
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const rawQuery = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F${scope.replaceAll('/', '%2F')}&X-Amz-Date=${amzDate}` +
    `&X-Amz-Expires=60&X-Amz-Security-Token=tok%2Ben&X-Amz-SignedHeaders=host`;
  const req = { method: 'GET', rawPath: '/b/k', rawQuery, headers: [['host', 'h']] as Array<[string, string]> };
  const canonical = canonicalRequest({ ...req, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD', presigned: true });
  t.true(canonical.includes('X-Amz-Security-Token=tok%2Ben'));
  const sig = sign(deriveSigningKey(secret, { date: amzDate.slice(0, 8), region: 'us-east-1', service: 's3' }), stringToSign(amzDate, scope, canonical));
  const auth = await verifySigV4({ ...req, rawQuery: `${rawQuery}&X-Amz-Signature=${sig}` }, { lookupSecrets: async () => [secret], now, region: 'us-east-1' });
  t.is(auth?.sessionToken, 'tok+en');
  t.deepEqual(auth?.payload, { mode: 'unsigned' });
  const swapped = `${rawQuery.replace('tok%2Ben', 'other')}&X-Amz-Signature=${sig}`;
  t.is(await code({ ...req, rawQuery: swapped }, { lookupSecrets: async () => [secret], now, region: 'us-east-1' }), 'SignatureDoesNotMatch');
});

test('canonical URI: no normalization, decode once, encode once', (t) => {
  const cr = (rawPath: string, rawQuery = '') =>
    canonicalRequest({ method: 'GET', rawPath, rawQuery, headers: [['Host', 'h']], signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD' }).split('\n').slice(1, 3);
  t.deepEqual(cr('/a/./b/../c//d'), ['/a/./b/../c//d', '']);
  t.deepEqual(cr('/test$file.text'), ['/test%24file.text', '']);
  t.deepEqual(cr('/test%24file.text'), ['/test%24file.text', '']);
  t.deepEqual(cr('/Key+'), ['/Key%2B', '']);
  t.deepEqual(cr('/%E1%88%B4'), ['/%E1%88%B4', '']);
  t.deepEqual(cr('/a%2fb'), ['/a/b', '']);
  t.deepEqual(cr('/', 'b=2&a=%2F&a=1&c'), ['/', 'a=%2F&a=1&b=2&c=']);
  t.deepEqual(cr('/', 'prefix=a+b&x=%7e'), ['/', 'prefix=a%20b&x=~']);
  // Query values: SigV4 encodes ! ' ( ) * (encodeURIComponent does not); a stray '%' stays a literal '%'; bytes that
  // are no UTF-8 are encoded as the bytes they are (the canonical query encodes bytes), never through a U+FFFD.
  t.deepEqual(cr('/', "x=!'()*"), ['/', 'x=%21%27%28%29%2A']);
  t.deepEqual(cr('/', 'x=%2&y=100%&z=%zz'), ['/', 'x=%252&y=100%25&z=%25zz']);
  t.deepEqual(cr('/', 'x=%FF&y=%C3%A9%E9&z=%ED%A0%80'), ['/', 'x=%FF&y=%C3%A9%E9&z=%ED%A0%80']);
  t.deepEqual(cr('/', 'x=%ff+%e9&y=%FF%'), ['/', 'x=%FF%20%E9&y=%FF%25']);
  t.deepEqual(cr('/', 'x=%F0%9F%98%80%00'), ['/', 'x=%F0%9F%98%80%00']);
});

test('UTF-8 header values arrive latin1-decoded from Node and still verify', async (t) => {
  const secret = 'secret';
  const now = new Date('2024-01-02T03:04:05Z');
  const amzDate = formatAmzDate(now);
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const clientHeaders: Array<[string, string]> = [['host', 'h'], ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD'], ['x-amz-date', amzDate], ['x-amz-meta-name', 'café ☃']];
  const signedHeaders = clientHeaders.map(([n]) => n);
  const req = { method: 'PUT', rawPath: '/b/%E2%98%83', rawQuery: '', headers: clientHeaders };
  // The client hashes the canonical request as UTF-8.
  const canonical = canonicalRequest({ ...req, signedHeaders, payloadHash: 'UNSIGNED-PAYLOAD' });
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
  const sig = sign(deriveSigningKey(secret, { date: amzDate.slice(0, 8), region: 'us-east-1', service: 's3' }), sts);
  const asNode = clientHeaders.map(([n, v]) => [n, Buffer.from(v, 'utf8').toString('latin1')] as [string, string]);
  asNode.push(['Authorization', `AWS4-HMAC-SHA256 Credential=AK/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${sig}`]);
  const auth = await verifySigV4({ ...req, headers: asNode }, { lookupSecrets: async () => [secret], now, region: 'us-east-1' });
  t.is(auth?.accessKeyId, 'AK');
});
