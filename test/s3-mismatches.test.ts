/**
 * Smaller mismatches real clients hit, on the embedded store and over MinIO, with the answer AWS S3 gives:
 * - non-ASCII user metadata is stored as UTF-8 and returned RFC 2047-encoded (S3 User Guide, "Working with object
 *   metadata": "…returned as RFC 2047 encoded-words");
 * - UploadPartCopy with x-amz-copy-source-range past the source's end: 416 InvalidRange (UploadPartCopy API ref.);
 * - GetObject ?partNumber past the part count: 400 InvalidPart (as ceph/s3-tests test_multipart_get_part expects);
 * - DeleteBucket while only unfinished multipart uploads remain: the bucket goes, and its uploads with it (only
 *   directory buckets refuse, AbortMultipartUpload API reference); objects still make it BucketNotEmpty;
 * - an object written without a Content-Type reads as binary/octet-stream, S3's default, on every write path
 *   (o12c F1: a single PUT over MinIO stored application/octet-stream);
 * - an empty object read with `Range: bytes=-1` is answered whole (README), with its checksum when asked for, as a
 *   plain GET is (o12c F6: over MinIO the checksum was left out);
 * - x-amz-mp-parts-count answers partNumber reads only, as S3 documents PartsCount (GetObject/HeadObject API
 *   reference); the embedded store also sent it on plain reads of multipart objects (o12c F2).
 */
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { randomBytes } from 'node:crypto';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { boto } from './helpers/boto.ts';
import { connect } from 'node:net';
import { signRequest } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `mis-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function refused(t: ExecutionContext, p: Promise<unknown>, status: number, code: string): Promise<void> {
  const err = (await t.throwsAsync(p)) as S3ServiceException;
  t.is(err?.$metadata?.httpStatusCode, status, `${err?.name}: ${err?.message}`);
  t.is(err?.name, code);
}

const root = (f: Flavour) => ({ accessKeyId: f.gw.config.rootAccessKey!, secretAccessKey: f.gw.config.rootSecretKey! });

onEachBackend(test, 's3-mismatches', (it) => {
  // botocore refuses non-ASCII metadata client-side, so the UTF-8 bytes go out as a raw, SigV4-signed request.
  it('non-ASCII metadata (UTF-8 on the wire) is stored as UTF-8 and returned RFC 2047-encoded', async (t, f) => {
    const bucket = await freshBucket(f);
    const value = 'café ☕ 世界';
    const signed = await signRequest({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/meta`, headers: { 'x-amz-meta-name': value, 'x-amz-meta-plain': 'ascii' }, body: 'x' });
    // Node's HTTP client will not put UTF-8 bytes in a header, so the request is written to the socket as bytes.
    const head = Object.entries({ ...signed.headers, 'content-length': '1', connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const status = await new Promise<string>((resolve, reject) => {
      const sock = connect(f.gw.gw.port, '127.0.0.1', () => sock.write(Buffer.concat([Buffer.from(`PUT ${signed.path} HTTP/1.1\r\n${head}\r\n`, 'utf8'), Buffer.from('x')])));
      let got = '';
      sock.on('data', (d) => (got += d.toString('latin1')));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    t.regex(status, /^HTTP\/1\.1 200 /, status);
    const word = `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
    const stored = await boto(f.gw.gw.url, root(f), 'head_object', { Bucket: bucket, Key: 'meta' });
    t.deepEqual(stored.Metadata, { name: word, plain: 'ascii' });
    // Sent back as an encoded-word (what a client copying metadata does), it is the same value.
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'meta2', Body: 'x', Metadata: { name: word } }));
    t.is((await boto(f.gw.gw.url, root(f), 'head_object', { Bucket: bucket, Key: 'meta2' })).Metadata.name, word);
    await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'meta3', CopySource: `${bucket}/meta` }));
    t.is((await boto(f.gw.gw.url, root(f), 'head_object', { Bucket: bucket, Key: 'meta3' })).Metadata.name, word);
  });

  it('UploadPartCopy with a range past the source\'s end is 416 InvalidRange', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: '0123456789' }));
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'dst' }));
    await refused(t, f.gw.s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId: up.UploadId, PartNumber: 1, CopySource: `${bucket}/src`, CopySourceRange: 'bytes=5-20' })), 416, 'InvalidRange');
    const ok = await f.gw.s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId: up.UploadId, PartNumber: 1, CopySource: `${bucket}/src`, CopySourceRange: 'bytes=5-9' }));
    t.truthy(ok.CopyPartResult?.ETag);
  });

  it('GetObject partNumber past the part count is 400 InvalidPart', async (t, f) => {
    const bucket = await freshBucket(f);
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' }));
    const p1 = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: 'only part' }));
    await f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] } }));
    await refused(t, f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: 2 })), 400, 'InvalidPart');
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'single', Body: 'x' }));
    await refused(t, f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'single', PartNumber: 2 })), 400, 'InvalidPart');
  });

  it('DeleteBucket with only unfinished uploads deletes it and them; with an object it is BucketNotEmpty', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'o', Body: 'x' }));
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'pending' }));
    await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'pending', UploadId: up.UploadId, PartNumber: 1, Body: 'part' }));
    await refused(t, f.gw.s3.send(new DeleteBucketCommand({ Bucket: bucket })), 409, 'BucketNotEmpty');
    await f.gw.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'o' }));
    await f.gw.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    await refused(t, f.gw.s3.send(new HeadBucketCommand({ Bucket: bucket })), 404, 'NotFound');
    await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    t.deepEqual((await f.gw.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], []);
  });

  // botocore sends no Content-Type when none is given (the JS SDK would send application/octet-stream itself).
  it('an object written without a Content-Type reads as binary/octet-stream on every write path', async (t, f) => {
    const bucket = await freshBucket(f);
    const creds = root(f);
    const typeOf = async (key: string) => (await boto(f.gw.gw.url, creds, 'head_object', { Bucket: bucket, Key: key })).ContentType as string;
    await boto(f.gw.gw.url, creds, 'put_object', { Bucket: bucket, Key: 'put.txt', Body: 'plain' });
    t.is(await typeOf('put.txt'), 'binary/octet-stream', 'PutObject');
    await boto(f.gw.gw.url, creds, 'put_object', { Bucket: bucket, Key: 'empty.txt', Body: '' });
    t.is(await typeOf('empty.txt'), 'binary/octet-stream', 'PutObject of nothing');
    await boto(f.gw.gw.url, creds, 'put_object', { Bucket: bucket, Key: 'created.txt', Body: 'new', IfNoneMatch: '*' });
    t.is(await typeOf('created.txt'), 'binary/octet-stream', 'conditional PutObject');
    await boto(f.gw.gw.url, creds, 'put_object', { Bucket: bucket, Key: 'typed.txt', Body: 'x', ContentType: 'text/x-typed' });
    await boto(f.gw.gw.url, creds, 'copy_object', { Bucket: bucket, Key: 'replaced.txt', CopySource: `${bucket}/typed.txt`, MetadataDirective: 'REPLACE' });
    t.is(await typeOf('replaced.txt'), 'binary/octet-stream', 'CopyObject REPLACE without a type');
    await boto(f.gw.gw.url, creds, 'copy_object', { Bucket: bucket, Key: 'copied.txt', CopySource: `${bucket}/typed.txt` });
    t.is(await typeOf('copied.txt'), 'text/x-typed', 'CopyObject COPY keeps the type');
    const up = await boto(f.gw.gw.url, creds, 'create_multipart_upload', { Bucket: bucket, Key: 'mp.txt' });
    const part = await boto(f.gw.gw.url, creds, 'upload_part', { Bucket: bucket, Key: 'mp.txt', UploadId: up.UploadId, PartNumber: 1, Body: 'part' });
    await boto(f.gw.gw.url, creds, 'complete_multipart_upload', { Bucket: bucket, Key: 'mp.txt', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } });
    t.is(await typeOf('mp.txt'), 'binary/octet-stream', 'multipart upload');
    // POST Object: a file part whose type is application/octet-stream (a Blob without one) names no type.
    const post = await createPresignedPost(f.gw.s3, { Bucket: bucket, Key: 'posted.txt', Expires: 300 });
    const form = new FormData();
    for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
    form.append('file', new Blob(['posted']), 'posted.txt');
    const res = await fetch(post.url, { method: 'POST', body: form });
    t.is(res.status, 204, await res.text());
    t.is(await typeOf('posted.txt'), 'binary/octet-stream', 'POST Object');
    const got = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'put.txt' }));
    t.is(got.ContentType, 'binary/octet-stream', 'GetObject');
    await got.Body?.transformToString();
  });

  it('an empty object read with Range: bytes=-1 and checksum mode carries its checksum, as a plain GET does', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'empty', Body: Buffer.alloc(0), ChecksumAlgorithm: 'CRC32' }));
    const plain = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'empty', ChecksumMode: 'ENABLED' }));
    await plain.Body?.transformToString();
    t.is(plain.ChecksumCRC32, 'AAAAAA==');
    const tail = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'empty', Range: 'bytes=-1', ChecksumMode: 'ENABLED' }));
    t.is(await tail.Body?.transformToString(), '');
    t.is(tail.$metadata.httpStatusCode, 200);
    t.is(tail.ContentRange, undefined);
    t.is(tail.ChecksumCRC32, 'AAAAAA==');
    t.is(tail.ChecksumType, plain.ChecksumType);
  });

  it('x-amz-mp-parts-count answers GET and HEAD with a partNumber only', async (t, f) => {
    const bucket = await freshBucket(f);
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' }));
    const Parts = [];
    for (const [i, body] of [Buffer.alloc(5 * 1024 * 1024, 1), Buffer.from('tail')].entries()) {
      const p = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: i + 1, Body: body }));
      Parts.push({ PartNumber: i + 1, ETag: p.ETag });
    }
    await f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, MultipartUpload: { Parts } }));
    const plainGet = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp' }));
    await plainGet.Body?.transformToByteArray();
    t.is(plainGet.PartsCount, undefined, 'plain GET');
    t.is((await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp' }))).PartsCount, undefined, 'plain HEAD');
    const ranged = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp', Range: 'bytes=0-9' }));
    await ranged.Body?.transformToByteArray();
    t.is(ranged.PartsCount, undefined, 'ranged GET');
    const part = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: 2 }));
    t.is(await part.Body?.transformToString(), 'tail');
    t.is(part.PartsCount, 2, 'GET partNumber=2');
    t.is((await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: 1 }))).PartsCount, 2, 'HEAD partNumber=1');
  });
});
