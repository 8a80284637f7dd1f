/**
 * Conditional requests that the upstream backend used to answer unlike the embedded store, run on both backends so
 * the embedded store is the reference: checksums kept by conditional PutObject bodies larger than one internal part
 * and by conditional CopyObject; If-Match / If-None-Match lists and weak tags on GET, HEAD and conditional writes.
 * Expected answers: S3 API reference (PutObject, CopyObject, GetObjectAttributes, "Checking object integrity":
 * FULL_OBJECT CRC checksums of multipart objects); RFC 9110 §13.1.1 (If-Match lists), §13.1.2 (If-None-Match lists,
 * weak comparison).
 */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { bodyBytes } from './helpers/gateway.ts';

const test = anyTest as TestFn<unknown>;

/** Larger than the upstream backend's 8 MiB internal part, so a conditional PUT goes up in two parts. */
const LARGE = 9 * 1024 * 1024;

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `upcond-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function status(p: Promise<unknown>): Promise<{ status: number; code?: string }> {
  try {
    await p;
    return { status: 200 };
  } catch (err) {
    const e = err as S3ServiceException;
    return { status: e.$metadata?.httpStatusCode ?? 0, code: e.name };
  }
}

/** The checksum HEAD, GET and GetObjectAttributes report for the object. */
async function storedChecksums(t: ExecutionContext, f: Flavour, bucket: string, key: string, want: string): Promise<void> {
  const head = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  t.is(head.ChecksumCRC32, want, 'HEAD reports the checksum');
  const get = await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  t.is(get.ChecksumCRC32, want, 'GET reports the checksum');
  await bodyBytes(get.Body);
  const attrs = await f.gw.s3.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: key, ObjectAttributes: ['Checksum'] }));
  t.is(attrs.Checksum?.ChecksumCRC32, want, 'GetObjectAttributes reports the checksum');
}

onEachBackend(test, 'upstream-conditions', (it) => {
  it('a conditional PutObject larger than one part keeps its CRC32 (If-None-Match: * and If-Match)', async (t, f) => {
    const bucket = await freshBucket(f);
    const body = randomBytes(LARGE);
    const created = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body, ChecksumAlgorithm: 'CRC32', IfNoneMatch: '*' }));
    t.truthy(created.ChecksumCRC32);
    await storedChecksums(t, f, bucket, 'k', created.ChecksumCRC32!);
    const next = randomBytes(LARGE);
    const swapped = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: next, ChecksumAlgorithm: 'CRC32', IfMatch: created.ETag }));
    t.not(swapped.ChecksumCRC32, created.ChecksumCRC32);
    await storedChecksums(t, f, bucket, 'k', swapped.ChecksumCRC32!);
    t.true((await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body)).equals(next));
    // A wrong value is still refused, and the object stays.
    const bad = await status(
      f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body, ChecksumCRC32: created.ChecksumCRC32 === 'AAAAAA==' ? 'AQAAAA==' : 'AAAAAA==', IfMatch: swapped.ETag })),
    );
    t.deepEqual(bad, { status: 400, code: 'BadDigest' });
    await storedChecksums(t, f, bucket, 'k', swapped.ChecksumCRC32!);
  });

  it('a conditional CopyObject keeps the source\'s CRC32, as a plain copy does', async (t, f) => {
    const bucket = await freshBucket(f);
    const src = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: randomBytes(64 * 1024), ChecksumAlgorithm: 'CRC32' }));
    const copied = await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst', CopySource: `${bucket}/src`, IfNoneMatch: '*' }));
    t.is(copied.CopyObjectResult?.ChecksumCRC32, src.ChecksumCRC32, 'the copy result reports the checksum');
    await storedChecksums(t, f, bucket, 'dst', src.ChecksumCRC32!);
    t.deepEqual(await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst', CopySource: `${bucket}/src`, IfNoneMatch: '*' }))), {
      status: 412,
      code: 'PreconditionFailed',
    });
  });

  it('GET and HEAD read If-Match / If-None-Match lists, compare If-None-Match weakly and If-Match strongly', async (t, f) => {
    const bucket = await freshBucket(f);
    const { ETag } = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'listed' }));
    const tag = ETag!;
    const cases: Array<[{ IfMatch?: string; IfNoneMatch?: string }, number]> = [
      [{ IfMatch: `"x", ${tag}` }, 200],
      [{ IfMatch: `${tag}, "y"` }, 200],
      [{ IfMatch: `"x", "y"` }, 412],
      // RFC 9110 §13.1.1: If-Match uses the strong comparison, which a weak entity tag never passes.
      [{ IfMatch: `W/${tag}` }, 412],
      [{ IfMatch: `"x", W/${tag}` }, 412],
      [{ IfMatch: `W/${tag}`, IfNoneMatch: `"y"` }, 412],
      // A comma inside the quotes belongs to the tag: `"a,<etag>"` names neither "a" nor the ETag.
      [{ IfMatch: `"a,${tag.slice(1)}` }, 412],
      [{ IfNoneMatch: `"a,${tag.slice(1)}` }, 200],
      [{ IfNoneMatch: `W/${tag}` }, 304],
      [{ IfNoneMatch: `"x", ${tag}` }, 304],
      [{ IfNoneMatch: `"x", W/${tag}` }, 304],
      [{ IfNoneMatch: `"x", "y"` }, 200],
      [{ IfMatch: `"x", ${tag}`, IfNoneMatch: `"y"` }, 200],
    ];
    for (const [conditions, want] of cases) {
      const get = await status(
        f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', ...conditions })).then(async (out) => {
          t.is((await bodyBytes(out.Body)).toString(), 'listed');
        }),
      );
      t.is(get.status, want, `GET ${JSON.stringify(conditions)}`);
      const head = await status(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', ...conditions })));
      t.is(head.status, want, `HEAD ${JSON.stringify(conditions)}`);
    }
    // A list naming no object's ETag on a key that does not exist is still NoSuchKey.
    t.deepEqual(await status(f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'absent', IfMatch: `"x", ${tag}` }))), { status: 404, code: 'NoSuchKey' });
  });

  it('conditional writes read If-Match lists: PutObject and CopyObject swap when the list names the ETag', async (t, f) => {
    const bucket = await freshBucket(f);
    const v1 = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v1' }));
    const v2 = await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v2', IfMatch: `"x", ${v1.ETag}` }));
    const refused = await status(f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v3', IfMatch: `"x", ${v1.ETag}` })));
    t.deepEqual(refused, { status: 412, code: 'PreconditionFailed' });
    const absent = await status(f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'absent', Body: 'v', IfMatch: `"x", ${v1.ETag}` })));
    t.deepEqual(absent, { status: 404, code: 'NoSuchKey' });
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: 'copied' }));
    await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'k', CopySource: `${bucket}/src`, IfMatch: `"x", ${v2.ETag}` }));
    t.is((await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body)).toString(), 'copied');
    const stale = await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'k', CopySource: `${bucket}/src`, IfMatch: `"x", ${v2.ETag}` })));
    t.deepEqual(stale, { status: 412, code: 'PreconditionFailed' });
    // Copy-source conditions read lists too.
    const src = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'src' }));
    await f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c', CopySource: `${bucket}/src`, CopySourceIfMatch: `"x", ${src.ETag}` }));
    const notModified = await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c2', CopySource: `${bucket}/src`, CopySourceIfNoneMatch: `"x", ${src.ETag}` })));
    t.deepEqual(notModified, { status: 412, code: 'PreconditionFailed' });
    t.deepEqual(await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c3', CopySource: `${bucket}/src`, CopySourceIfNoneMatch: `W/${src.ETag}` }))), {
      status: 412,
      code: 'PreconditionFailed',
    }, 'a copy-source If-None-Match compares weakly');
    // If-Match compares strongly wherever it is read: a weak tag of the current ETag swaps nothing and copies nothing.
    const current = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }));
    for (const IfMatch of [`W/${current.ETag}`, `"x", W/${current.ETag}`]) {
      t.deepEqual(await status(f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'weak', IfMatch }))), { status: 412, code: 'PreconditionFailed' }, `PUT ${IfMatch}`);
      t.deepEqual(await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'k', CopySource: `${bucket}/src`, IfMatch }))), { status: 412, code: 'PreconditionFailed' }, `COPY ${IfMatch}`);
    }
    for (const CopySourceIfMatch of [`W/${src.ETag}`, `"x", W/${src.ETag}`]) {
      const weakSource = await status(f.gw.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'c4', CopySource: `${bucket}/src`, CopySourceIfMatch })));
      t.deepEqual(weakSource, { status: 412, code: 'PreconditionFailed' }, `copy source ${CopySourceIfMatch}`);
    }
    t.is((await bodyBytes((await f.gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body)).toString(), 'copied', 'nothing was swapped');
    await t.throwsAsync(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'c4' })), { name: 'NotFound' });
  });
});
