/**
 * Bytes that are not UTF-8, wherever a request carries a key or a name as text, on the embedded store and over
 * MinIO: they are refused with the right 400, never decoded to U+FFFD — which would let `\xff\xfe` name the
 * different, existing key `\uFFFD\uFFFD` (DeleteObjects deleted it, POST Object overwrote `pf/\uFFFD`). XML bodies
 * are MalformedXML (also under a correct Content-MD5: the digest is of the bytes received), form fields
 * MalformedPOSTRequest, query values InvalidArgument once the signature (over the bytes, SigV4) has verified.
 * File names of browser uploads are read as the UTF-8 browsers send (WHATWG HTML multipart/form-data; RFC 7578).
 * The refusals of S3 it matches are in README "Keys, names and UTF-8".
 */
import { CreateBucketCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { bodyBytes } from './helpers/gateway.ts';
import { errorCode, rawSignedSend, send, signedSend, type RawResponse } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;
const md5b64 = (b: Buffer) => createHash('md5').update(b).digest('base64');

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `u8-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function put(f: Flavour, bucket: string, key: string, body = 'victim'): Promise<void> {
  await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

async function content(f: Flavour, bucket: string, key: string): Promise<string> {
  return (await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toString();
}

async function keysOf(f: Flavour, bucket: string): Promise<string[]> {
  return ((await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!).sort();
}

function assertRefused(t: ExecutionContext, res: RawResponse, status: number, code: string): void {
  t.is(res.status, status, res.body);
  t.is(errorCode(res), code, res.body);
  t.regex(res.body, /<RequestId>[0-9A-F]{16}<\/RequestId>/);
}

/** A request body signed and sent as the bytes given (the SDK would re-encode it as text). */
function rawBody(f: Flavour, method: string, path: string, query: Array<[string, string]>, body: Buffer, headers: Record<string, string> = {}) {
  return rawSignedSend({ url: f.gw.gw.url, method, path, query, body, headers: { 'content-md5': md5b64(body), ...headers } });
}

/** One part of a multipart/form-data body, every byte as given. */
interface FormPart {
  name: string | Buffer;
  value: string | Buffer;
  /** The Content-Disposition parameters after name (`filename="…"`, `filename*=…`), as raw bytes. */
  disposition?: Buffer;
}

/** POSTs a form built byte for byte (busboy reads it as a browser's). */
function postForm(url: string, parts: FormPart[]): Promise<RawResponse> {
  const boundary = `----u8${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="`), Buffer.from(p.name), Buffer.from('"'));
    if (p.disposition) chunks.push(Buffer.from('; '), p.disposition);
    chunks.push(Buffer.from('\r\n\r\n'), Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const body = Buffer.concat(chunks);
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path: u.pathname, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } }, (res) => {
      const got: Buffer[] = [];
      res.on('data', (c: Buffer) => got.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(got).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A presigned POST for keys under `prefix` (`${filename}` allowed), its fields as form parts, the key left out. */
async function presignedPost(f: Flavour, bucket: string, prefix: string): Promise<{ url: string; fields: FormPart[] }> {
  const post = await createPresignedPost(f.gw.s3, { Bucket: bucket, Key: `${prefix}\${filename}`, Expires: 300 });
  return { url: post.url, fields: Object.entries(post.fields).filter(([k]) => k !== 'key').map(([name, value]) => ({ name, value })) };
}

onEachBackend(test, 'non-utf8-input', (it, flavour) => {
  // STS and the console decide nothing per backend: once, on the embedded store.
  if (flavour === 'embedded') {
    it('STS form bodies and console JSON bodies that are not UTF-8 are refused as such', async (t, f) => {
      const sts = (body: Buffer) => send({ url: f.gw.gw.url, method: 'POST', path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body });
      const form = 'Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3Aacme%3Arole%2Fr&WebIdentityToken=x&RoleSessionName=';
      for (const body of [Buffer.from(`${form}%FF`), Buffer.concat([Buffer.from(form), Buffer.from([0xff])])]) {
        const res = await sts(body);
        t.is(res.status, 400, res.body);
        t.regex(res.body, /<Code>InvalidParameterValue<\/Code>[\s\S]*not valid UTF-8/);
      }
      const signIn = Buffer.concat([Buffer.from('{"accessKeyId":"'), Buffer.from([0xff]), Buffer.from('","secretKey":"x"}')]);
      const res = await send({ url: f.gw.gw.url, method: 'POST', path: '/_anvil/console/api/session', headers: { 'content-type': 'application/json', 'content-length': String(signIn.length) }, body: signIn });
      t.is(res.status, 400, res.body);
      t.regex(res.body, /not valid UTF-8/);
    });

    it('admin API bodies that are not UTF-8 are 400 InvalidInput: no tuple lands on the U+FFFD spelling', async (t, f) => {
      await signedSend({ url: f.gw.gw.url, method: 'POST', path: '/_anvil/admin/v1/tenants', body: JSON.stringify({ name: 'utf' }), headers: { 'content-type': 'application/json' } });
      const schema = 'definition user {}\ndefinition doc {\n  relation viewer: user\n}';
      const put = await signedSend({ url: f.gw.gw.url, method: 'PUT', path: '/_anvil/admin/v1/schema', query: { tenant: 'utf' }, body: JSON.stringify({ schema, reason: 't' }), headers: { 'content-type': 'application/json' } });
      t.is(put.status, 200, put.body);
      const body = Buffer.concat([Buffer.from('{"tenant":"utf","reason":"t","updates":[{"op":"touch","tuple":"doc:a'), Buffer.from([0xff]), Buffer.from('#viewer@user:amy"}]}')]);
      const res = await rawSignedSend({ url: f.gw.gw.url, method: 'POST', path: '/_anvil/admin/v1/tuples', body, headers: { 'content-type': 'application/json' } });
      t.is(res.status, 400, res.body);
      t.regex(res.body, /InvalidInput[\s\S]*not UTF-8/);
      const listed = await signedSend({ url: f.gw.gw.url, method: 'GET', path: '/_anvil/admin/v1/tuples', query: { tenant: 'utf', resourceType: 'doc' } });
      t.is(listed.status, 200, listed.body);
      t.notRegex(listed.body, /doc:a/, 'nothing was written');
    });
  }

  it('DeleteObjects naming bytes that are not UTF-8 is MalformedXML (a correct Content-MD5 too) and deletes nothing', async (t, f) => {
    const bucket = await freshBucket(f);
    const victims = ['\uFFFD\uFFFD', 'a\uFFFD\uFFFDb', 'keep'];
    for (const k of victims) await put(f, bucket, k);
    // 0xFF 0xFE: never UTF-8; C0 AF: an overlong '/'; ED A0 80: an encoded surrogate. Each decodes lossily to U+FFFDs.
    for (const key of [Buffer.from([0xff, 0xfe]), Buffer.from([0x61, 0xc0, 0xaf, 0x62]), Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62])]) {
      const body = Buffer.concat([Buffer.from('<Delete><Object><Key>'), key, Buffer.from('</Key></Object><Object><Key>keep</Key></Object></Delete>')]);
      assertRefused(t, await rawBody(f, 'POST', `/${bucket}`, [['delete', '']], body), 400, 'MalformedXML');
      // The same body with a checksum header instead of Content-MD5 (what SDKs send now).
      const sha = createHash('sha256').update(body).digest('base64');
      const viaChecksum = await rawSignedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}`, query: [['delete', '']], body, headers: { 'x-amz-checksum-sha256': sha } });
      assertRefused(t, viaChecksum, 400, 'MalformedXML');
    }
    // Not a single stray byte of junk either: the digest is right, the document is not UTF-8.
    assertRefused(t, await rawBody(f, 'POST', `/${bucket}`, [['delete', '']], Buffer.from([0x00, 0xff, 0xfe, 0x20, 0x67])), 400, 'MalformedXML');
    t.deepEqual(await keysOf(f, bucket), [...victims].sort());
    // A wrong digest is still BadDigest, and the U+FFFD key itself, sent as UTF-8, is deleted as asked.
    const good = Buffer.from('<Delete><Object><Key>\uFFFD\uFFFD</Key></Object></Delete>');
    assertRefused(t, await rawSignedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}`, query: [['delete', '']], body: good, headers: { 'content-md5': md5b64(Buffer.from('other')) } }), 400, 'BadDigest');
    const deleted = await rawBody(f, 'POST', `/${bucket}`, [['delete', '']], good);
    t.is(deleted.status, 200, deleted.body);
    t.deepEqual(await keysOf(f, bucket), ['a\uFFFD\uFFFDb', 'keep']);
  });

  it('every other XML body with bytes that are not UTF-8 is MalformedXML: Complete, object and bucket tagging, CORS', async (t, f) => {
    const bucket = await freshBucket(f);
    await put(f, bucket, 'obj', 'x');
    const ff = Buffer.from([0xff]);
    const xml = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    const tagging = xml('<Tagging><TagSet><Tag><Key>k</Key><Value>v', ff, '</Value></Tag></TagSet></Tagging>');
    assertRefused(t, await rawBody(f, 'PUT', `/${bucket}/obj`, [['tagging', '']], tagging), 400, 'MalformedXML');
    assertRefused(t, await rawBody(f, 'PUT', `/${bucket}`, [['tagging', '']], tagging), 400, 'MalformedXML');
    const cors = xml('<CORSConfiguration><CORSRule><AllowedOrigin>https://a', ff, '.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>');
    assertRefused(t, await rawBody(f, 'PUT', `/${bucket}`, [['cors', '']], cors), 400, 'MalformedXML');
    const created = await signedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}/mp`, query: { uploads: '' } });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body)![1]!;
    const part = await signedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/mp`, query: { partNumber: '1', uploadId }, body: 'hello' });
    const etag = part.headers.etag as string;
    const complete = xml(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload><!-- `, ff, ' -->');
    assertRefused(t, await rawSignedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}/mp`, query: [['uploadId', encodeURIComponent(uploadId)]], body: complete }), 400, 'MalformedXML');
    // Nothing changed: no tags, no CORS, no object from the upload.
    t.deepEqual((await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'obj' }))).TagSet, []);
    const getCors = await signedSend({ url: f.gw.gw.url, method: 'GET', path: `/${bucket}`, query: { cors: '' } });
    assertRefused(t, getCors, 404, 'NoSuchCORSConfiguration');
    t.deepEqual(await keysOf(f, bucket), ['obj']);
  });

  it('POST Object: a key field or file name that is not UTF-8 is refused and overwrites nothing', async (t, f) => {
    const bucket = await freshBucket(f);
    await put(f, bucket, 'pf/\uFFFD');
    const { url, fields } = await presignedPost(f, bucket, 'pf/');
    const file = (disposition = Buffer.from('filename="a"')): FormPart => ({ name: 'file', value: 'OVERWRITTEN', disposition });
    // The key field as a plain field (a browser's), and as a part with a file name (python-requests sends those).
    const asField = await postForm(url, [...fields, { name: 'key', value: Buffer.from([0x70, 0x66, 0x2f, 0xff]) }, file()]);
    assertRefused(t, asField, 400, 'MalformedPOSTRequest');
    const asFilePart = await postForm(url, [...fields, { name: 'key', value: Buffer.from([0x70, 0x66, 0x2f, 0xff]), disposition: Buffer.from('filename="key"') }, file()]);
    assertRefused(t, asFilePart, 400, 'MalformedPOSTRequest');
    const byName = await postForm(url, [...fields, { name: 'key', value: 'pf/${filename}' }, file(Buffer.from([0x66, 0x69, 0x6c, 0x65, 0x6e, 0x61, 0x6d, 0x65, 0x3d, 0x22, 0xff, 0x22]))]);
    assertRefused(t, byName, 400, 'MalformedPOSTRequest');
    t.is(await content(f, bucket, 'pf/\uFFFD'), 'victim');
    t.deepEqual(await keysOf(f, bucket), ['pf/\uFFFD']);
  });

  it('POST Object: ${filename} is the UTF-8 file name browsers send, or its RFC 5987 filename*', async (t, f) => {
    const bucket = await freshBucket(f);
    const { url, fields } = await presignedPost(f, bucket, 'pfn/');
    const upload = (disposition: Buffer) => postForm(url, [...fields, { name: 'key', value: 'pfn/${filename}' }, { name: 'file', value: 'hello', disposition }]);
    const raw = await upload(Buffer.concat([Buffer.from('filename="'), Buffer.from('résumé 日本.pdf'), Buffer.from('"')]));
    t.is(raw.status, 204, raw.body);
    const star = await upload(Buffer.from(`filename="fallback.txt"; filename*=UTF-8''${encodeURIComponent('naïve.txt')}`));
    t.is(star.status, 204, star.body);
    t.deepEqual(await keysOf(f, bucket), ['pfn/naïve.txt', 'pfn/résumé 日本.pdf']);
    t.is(await content(f, bucket, 'pfn/résumé 日本.pdf'), 'hello');
    const badStar = await upload(Buffer.from("filename*=UTF-8''%FF.txt"));
    assertRefused(t, badStar, 400, 'MalformedPOSTRequest');
    t.is((await keysOf(f, bucket)).length, 2);
  });

  it('query values that are not UTF-8 verify (SigV4 signs the bytes) and are InvalidArgument, not a 403', async (t, f) => {
    const bucket = await freshBucket(f);
    await put(f, bucket, 'obj', 'x');
    await put(f, bucket, '\uFFFD', 'x');
    const get = (path: string, query: Array<[string, string]>) => rawSignedSend({ url: f.gw.gw.url, method: 'GET', path, query });
    for (const [path, query, name] of [
      [`/${bucket}`, [['list-type', '2'], ['prefix', '%FF']], 'prefix'],
      [`/${bucket}`, [['prefix', 'a%C0%AF']], 'prefix'],
      [`/${bucket}/obj`, [['uploadId', '%FF']], 'uploadId'],
      [`/${bucket}/obj`, [['response-content-type', '%FF']], 'response-content-type'],
    ] as Array<[string, Array<[string, string]>, string]>) {
      const res = await get(path, query);
      assertRefused(t, res, 400, 'InvalidArgument');
      t.regex(res.body, new RegExp(`<ArgumentName>${name}</ArgumentName>`));
    }
    // Escaped UTF-8 (and escaped ASCII the canonical form keeps) is what it always was.
    const listed = await get(`/${bucket}`, [['list-type', '2'], ['prefix', '%EF%BF%BD']]);
    t.is(listed.status, 200, listed.body);
    t.regex(listed.body, /<KeyCount>1<\/KeyCount>/);
    // A wrong signature over the same bytes is still a 403 first.
    const forged = await rawSignedSend({ url: f.gw.gw.url, method: 'GET', path: `/${bucket}`, query: [['prefix', '%FF']], creds: { accessKeyId: 'AKIATESTROOT00000001', secretAccessKey: 'wrong' } });
    assertRefused(t, forged, 403, 'SignatureDoesNotMatch');
  });

  it('x-amz-copy-source and x-amz-tagging sent as raw UTF-8 bytes name what they spell; bytes that are not UTF-8 are refused', async (t, f) => {
    const bucket = await freshBucket(f);
    await put(f, bucket, 'é', 'accented');
    await put(f, bucket, 'Ã©', 'mojibake');
    await put(f, bucket, 'ÿ', 'latin1');
    const copy = (source: Buffer, to: string) => rawSignedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/${to}`, headers: { 'x-amz-copy-source': source } });
    const copied = await copy(Buffer.from(`/${bucket}/é`), 'copied');
    t.is(copied.status, 200, copied.body);
    t.is(await content(f, bucket, 'copied'), 'accented');
    assertRefused(t, await copy(Buffer.concat([Buffer.from(`/${bucket}/`), Buffer.from([0xff])]), 'nope'), 400, 'InvalidArgument');
    // MinIO takes tag keys and values of ASCII only (InvalidTag otherwise), so the non-ASCII tag is the embedded store's.
    const tag = f.name === 'embedded' ? 'français' : 'plain';
    const tagged = await rawSignedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/tagged`, body: 'x', headers: { 'x-amz-tagging': Buffer.from(`lang=${tag}`) } });
    t.is(tagged.status, 200, tagged.body);
    t.deepEqual((await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tagged' }))).TagSet, [{ Key: 'lang', Value: tag }]);
    for (const tagging of [Buffer.from('lang=%FF'), Buffer.from([0x6c, 0x3d, 0xff])]) {
      assertRefused(t, await rawSignedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/nope`, body: 'x', headers: { 'x-amz-tagging': tagging } }), 400, 'InvalidTag');
    }
    t.deepEqual(await keysOf(f, bucket), ['copied', 'tagged', 'Ã©', 'é', 'ÿ'].sort());
  });

  it('a copy source ?versionId= is InvalidArgument, an empty source bucket (`//key`) InvalidBucketName, a Tag without Value MalformedXML, an empty x-amz-meta- name InvalidArgument', async (t, f) => {
    const bucket = await freshBucket(f);
    await put(f, bucket, 'src', 'x');
    const versioned = await signedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/dst`, headers: { 'x-amz-copy-source': `/${bucket}/src?versionId=abc` } });
    assertRefused(t, versioned, 400, 'InvalidArgument');
    // An empty bucket segment before a key is a bucket name no bucket can have, as GET `//key` reads it (README).
    for (const source of [`//${bucket}/src`, '//src', '%2F%2Fsrc']) {
      assertRefused(t, await signedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/dst`, headers: { 'x-amz-copy-source': source } }), 400, 'InvalidBucketName');
    }
    const noValue = Buffer.from('<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>');
    assertRefused(t, await rawBody(f, 'PUT', `/${bucket}`, [['tagging', '']], noValue), 400, 'MalformedXML');
    assertRefused(t, await rawBody(f, 'PUT', `/${bucket}/src`, [['tagging', '']], noValue), 400, 'MalformedXML');
    const emptyValue = Buffer.from('<Tagging><TagSet><Tag><Key>a</Key><Value></Value></Tag></TagSet></Tagging>');
    t.is((await rawBody(f, 'PUT', `/${bucket}/src`, [['tagging', '']], emptyValue)).status, 200);
    const meta = await signedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/meta`, body: 'x', headers: { 'x-amz-meta-': 'v' } });
    assertRefused(t, meta, 400, 'InvalidArgument');
    t.deepEqual(await keysOf(f, bucket), ['src']);
    t.is((await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'src' }))).ContentLength, 1);
  });
});
