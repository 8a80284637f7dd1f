/**
 * Conditional writes as compare-and-swap (Terraform's S3 state locking, table formats), on the embedded store and
 * over MinIO, through @aws-sdk/client-s3's own IfNoneMatch / IfMatch parameters; and request features the gateway
 * does not implement, refused instead of silently ignored.
 * Expected answers: S3 API reference, PutObject / CompleteMultipartUpload / CopyObject ("If-None-Match: *"
 * → 412 PreconditionFailed when the key exists; "If-Match" → 412 on another ETag, 404 NoSuchKey when there is no
 * object); Error Responses (NotImplemented 501, InvalidStorageClass 400).
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { bodyBytes } from './helpers/gateway.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';

const test = anyTest as TestFn<unknown>;

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `cond-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function body(f: Flavour, bucket: string, key: string): Promise<string> {
  return (await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toString();
}

async function refused(t: ExecutionContext, p: Promise<unknown>, status: number, code: string): Promise<void> {
  const err = (await t.throwsAsync(p)) as S3ServiceException;
  t.is(err?.$metadata?.httpStatusCode, status, `${err?.name}: ${err?.message}`);
  t.is(err?.name, code);
}

onEachBackend(test, 's3-conditional', (it) => {
  it('PutObject If-None-Match: * creates once, then 412 and the first body stays', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'first', IfNoneMatch: '*' }));
    await refused(t, f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'second', IfNoneMatch: '*' })), 412, 'PreconditionFailed');
    t.is(await body(f, bucket, 'lock'), 'first');
  });

  it('PutObject If-Match swaps only the version it names; a missing key is 404 NoSuchKey', async (t, f) => {
    const bucket = await freshBucket(f);
    const v1 = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'state', Body: 'v1' }));
    const v2 = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'state', Body: 'v2', IfMatch: v1.ETag }));
    await refused(t, f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'state', Body: 'v3', IfMatch: v1.ETag })), 412, 'PreconditionFailed');
    t.is(await body(f, bucket, 'state'), 'v2');
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'state', Body: 'v3', IfMatch: v2.ETag }));
    t.is(await body(f, bucket, 'state'), 'v3');
    await refused(t, f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'absent', Body: 'x', IfMatch: v1.ETag })), 404, 'NoSuchKey');
    await refused(t, f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'absent' })), 404, 'NotFound');
  });

  it('concurrent If-None-Match: * writers: exactly one wins, the object is the winner\'s', async (t, f) => {
    const bucket = await freshBucket(f);
    const bodies = Array.from({ length: 12 }, (_, i) => `writer-${i}-${randomBytes(8).toString('hex')}`);
    const results = await Promise.allSettled(bodies.map((Body) => f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'race', Body, IfNoneMatch: '*' }))));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [bodies[i]] : []));
    t.is(winners.length, 1, JSON.stringify(results.map((r) => r.status === 'rejected' ? (r.reason as Error).name : 'ok')));
    for (const r of results) if (r.status === 'rejected') t.is((r.reason as Error).name, 'PreconditionFailed');
    t.is(await body(f, bucket, 'race'), winners[0]);
  });

  it('CompleteMultipartUpload If-None-Match: * refuses to replace, and completes where the key is free', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'mp', Body: 'existing' }));
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' }));
    const part = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, PartNumber: 1, Body: 'multipart' }));
    const complete = (extra: { IfNoneMatch?: string; IfMatch?: string }) =>
      f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }, ...extra }));
    await refused(t, complete({ IfNoneMatch: '*' }), 412, 'PreconditionFailed');
    t.is(await body(f, bucket, 'mp'), 'existing');
    const head = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp' }));
    await complete({ IfMatch: head.ETag });
    t.is(await body(f, bucket, 'mp'), 'multipart');
  });

  it('a conditional CompleteMultipartUpload retried after its answer was lost answers as the completion did', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'im', Body: 'previous' }));
    const previous = (await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'im' }))).ETag!;
    for (const [key, condition] of [['inm', { IfNoneMatch: '*' }], ['im', { IfMatch: previous }]] as const) {
      const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      const part = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: `made by ${key}` }));
      const complete = () =>
        f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }, ...condition }));
      const first = await complete();
      // The SDK's retry of the same request, as after a lost answer: the first attempt's object is what it finds.
      const retry = await complete();
      t.is(retry.ETag, first.ETag, `${key}: the retry answers the completion's ETag`);
      t.is(await body(f, bucket, key), `made by ${key}`);
    }
    // Not a retry: another upload under the same condition is still refused while it exists, and stays.
    const other = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'inm' }));
    const part = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'inm', UploadId: other.UploadId, PartNumber: 1, Body: 'made by inm' }));
    const parts = { Parts: [{ PartNumber: 1, ETag: part.ETag }] };
    await refused(t, f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'inm', UploadId: other.UploadId, MultipartUpload: parts, IfNoneMatch: '*' })), 412, 'PreconditionFailed');
    t.is((await f.gw.s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'inm', UploadId: other.UploadId }))).Parts?.length, 1, 'the refused upload is still there');
  });

  it('CopyObject If-None-Match: * does not overwrite the destination', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: 'source' }));
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'dst', Body: 'keep me' }));
    await refused(t, f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst', CopySource: `${bucket}/src`, IfNoneMatch: '*' })), 412, 'PreconditionFailed');
    t.is(await body(f, bucket, 'dst'), 'keep me');
    await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'new', CopySource: `${bucket}/src`, IfNoneMatch: '*' }));
    t.is(await body(f, bucket, 'new'), 'source');
    const dst = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dst' }));
    await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst', CopySource: `${bucket}/src`, IfMatch: dst.ETag }));
    t.is(await body(f, bucket, 'dst'), 'source');
  });

  it('If-None-Match with an ETag on a write asks for what S3 does not implement: 501, nothing written', async (t, f) => {
    const bucket = await freshBucket(f);
    await refused(t, f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x', IfNoneMatch: '"abc"' })), 501, 'NotImplemented');
    await refused(t, f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'x' })), 404, 'NotFound');
  });

  it('unimplemented features are refused, never ignored: object lock, SSE, storage classes, ACLs', async (t, f) => {
    const bucket = await freshBucket(f);
    const locked = `lock-${randomBytes(4).toString('hex')}`;
    await refused(t, f.gw.s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true })), 501, 'NotImplemented');
    await refused(t, f.gw.s3.send(new HeadBucketCommand({ Bucket: locked })), 404, 'NotFound');
    const puts: Array<[Record<string, unknown>, number, string]> = [
      [{ ServerSideEncryption: 'AES256' }, 501, 'NotImplemented'],
      [{ SSECustomerAlgorithm: 'AES256', SSECustomerKey: randomBytes(32).toString('base64') }, 501, 'NotImplemented'],
      [{ StorageClass: 'GLACIER' }, 501, 'NotImplemented'],
      [{ StorageClass: 'NOT_A_CLASS' }, 400, 'InvalidStorageClass'],
      [{ ACL: 'public-read' }, 501, 'NotImplemented'],
      [{ ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) }, 501, 'NotImplemented'],
      [{ WebsiteRedirectLocation: '/elsewhere' }, 501, 'NotImplemented'],
    ];
    for (const [extra, status, code] of puts) {
      await refused(t, f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ...extra })), status, code);
    }
    await refused(t, f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' })), 404, 'NotFound');
    // What the gateway does anyway passes: a private ACL, the STANDARD class.
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ACL: 'private', StorageClass: 'STANDARD' }));
    await refused(t, f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', VersionId: 'not-a-version' })), 400, 'InvalidArgument');
    t.is(await body(f, bucket, 'k'), 'x');
    // A conditional delete is refused rather than carried out unconditionally (DeleteObject API reference, If-Match).
    await refused(t, f.gw.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"0123"' })), 501, 'NotImplemented');
    t.is(await body(f, bucket, 'k'), 'x');
  });
});

/** A GetObject carrying If-Range (the SDK has no field for it): the header is added before signing. */
function getWithIfRange(f: Flavour, bucket: string, key: string, range: string, ifRange: string) {
  const command = new GetObjectCommand({ Bucket: bucket, Key: key, Range: range });
  command.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers['if-range'] = ifRange;
      return next(args);
    },
    { step: 'build', name: 'ifRange' },
  );
  return f.gw.s3.send(command);
}

onEachBackend(test, 's3-if-range', (it) => {
  // RFC 9110 §13.1.5, as S3 honours it: a resuming client must never get a range of a newer object.
  it('GetObject If-Range: a current ETag or Last-Modified serves the range; a stale, weak or garbled one the whole object', async (t, f) => {
    const bucket = await freshBucket(f);
    const old = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'resume', Body: 'old-body-0123456789' }));
    const now = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'resume', Body: 'new-body-abcdefghij' }));
    const head = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'resume' }));
    const ranged = await getWithIfRange(f, bucket, 'resume', 'bytes=9-12', now.ETag!);
    t.is(ranged.$metadata.httpStatusCode, 206);
    t.is(ranged.ContentRange, 'bytes 9-12/19');
    t.is((await bodyBytes(ranged.Body)).toString(), 'abcd');
    const byDate = await getWithIfRange(f, bucket, 'resume', 'bytes=9-12', head.LastModified!.toUTCString());
    t.is(byDate.$metadata.httpStatusCode, 206);
    t.is((await bodyBytes(byDate.Body)).toString(), 'abcd');
    for (const stale of [old.ETag!, `W/${now.ETag!}`, 'Thu, 01 Jan 1970 00:00:00 GMT', 'not-a-validator']) {
      const whole = await getWithIfRange(f, bucket, 'resume', 'bytes=9-12', stale);
      t.is(whole.$metadata.httpStatusCode, 200, stale);
      t.is(whole.ContentRange, undefined, stale);
      t.is((await bodyBytes(whole.Body)).toString(), 'new-body-abcdefghij', stale);
    }
    // A range past the end is evaluated only under a validator that holds: a stale one serves the whole object too.
    const past = await getWithIfRange(f, bucket, 'resume', 'bytes=99999-', old.ETag!);
    t.is(past.$metadata.httpStatusCode, 200);
    t.is((await bodyBytes(past.Body)).toString(), 'new-body-abcdefghij');
    const refused = await t.throwsAsync(getWithIfRange(f, bucket, 'resume', 'bytes=99999-', now.ETag!));
    t.is(refused?.name, 'InvalidRange');
  });
});

onEachBackend(test, 's3-conditional-precedence', (it) => {
  // RFC 9110 §13.2.2: If-Match is evaluated first, so a failing one answers 412 whatever If-None-Match or
  // If-Modified-Since would have answered (MinIO alone answers 304 there).
  it('GetObject and HeadObject: a failing If-Match is 412 even beside a matching If-None-Match or a false If-Modified-Since', async (t, f) => {
    const bucket = await freshBucket(f);
    const put = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'precedence' }));
    const future = new Date(Date.now() + 3600_000);
    for (const extra of [{ IfNoneMatch: put.ETag! }, { IfModifiedSince: future }]) {
      const what = JSON.stringify(extra);
      await refused(t, f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"0123456789abcdef0123456789abcdef"', ...extra })), 412, 'PreconditionFailed');
      const head = (await t.throwsAsync(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"0123456789abcdef0123456789abcdef"', ...extra })))) as S3ServiceException;
      t.is(head?.$metadata?.httpStatusCode, 412, what);
    }
    // A matching If-Match leaves If-None-Match to decide: 304.
    const notModified = (await t.throwsAsync(f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: put.ETag!, IfNoneMatch: put.ETag! })))) as S3ServiceException;
    t.is(notModified?.$metadata?.httpStatusCode, 304);
  });
});
