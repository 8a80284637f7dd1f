/** Multipart uploads through the SDK: lib-storage's Upload helper, part rules, copy parts, listings. */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import anyTest, { type TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { bodyBytes, pattern, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { sameBytes } from './helpers/bytes.ts';
import { errorCode, signedSend } from './helpers/raw.ts';

const test = anyTest as TestFn<TestGateway>;
const MiB = 1024 * 1024;
test.before(async (t) => {
  t.context = await startTestGateway();
  await t.context.s3.send(new CreateBucketCommand({ Bucket: 'mpu' }));
});
test.after.always(async (t) => t.context.close());

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

test('lib-storage Upload of a 12 MiB stream gives md5-of-md5s-N and the same bytes back', async (t) => {
  const body = pattern(12 * MiB);
  const upload = new Upload({
    client: t.context.s3,
    params: { Bucket: 'mpu', Key: 'big.bin', Body: Readable.from([body.subarray(0, 7 * MiB), body.subarray(7 * MiB)]) },
    partSize: 5 * MiB,
  });
  const res = await upload.done();
  const parts = [body.subarray(0, 5 * MiB), body.subarray(5 * MiB, 10 * MiB), body.subarray(10 * MiB)];
  const expected = createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex') + '-3';
  t.is(res.ETag, `"${expected}"`);
  const got = await t.context.s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big.bin' }));
  sameBytes(t, await bodyBytes(got.Body), body);
  const part2 = await t.context.s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big.bin', PartNumber: 2 }));
  t.is(part2.ContentLength, 5 * MiB);
  t.is(part2.PartsCount, 3);
  sameBytes(t, await bodyBytes(part2.Body), parts[1]);
  const range = await t.context.s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big.bin', Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` }));
  sameBytes(t, await bodyBytes(range.Body), body.subarray(5 * MiB - 10, 5 * MiB + 10));
});

test('complete checks order, ETags and minimum part size; abort discards', async (t) => {
  const { s3 } = t.context;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'rules', Metadata: { m: '1' } }));
  const p1 = await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'rules', UploadId, PartNumber: 1, Body: pattern(1000) }));
  const p2 = await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'rules', UploadId, PartNumber: 2, Body: pattern(1000) }));
  const small = await t.throwsAsync(
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'rules', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } })),
  );
  t.is(small?.name, 'EntityTooSmall');
  const order = await t.throwsAsync(
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'rules', UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: p2.ETag }, { PartNumber: 1, ETag: p1.ETag }] } })),
  );
  t.is(order?.name, 'InvalidPartOrder');
  const etag = await t.throwsAsync(
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'rules', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0000"' }] } })),
  );
  t.is(etag?.name, 'InvalidPart');
  const parts = await s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'rules', UploadId }));
  t.deepEqual(parts.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, 1000], [2, 1000]]);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
  t.true(uploads.Uploads?.some((u) => u.UploadId === UploadId && u.Key === 'rules'));
  // A single small last part is fine.
  const done = await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'rules', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] } }),
  );
  t.regex(done.ETag!, /-1"$/);
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'rules' }));
  t.is(head.ContentLength, 1000);
  t.deepEqual(head.Metadata, { m: '1' });

  const { UploadId: other } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted' }));
  await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'aborted', UploadId: other, PartNumber: 1, Body: 'x' }));
  await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted', UploadId: other }));
  const gone = await t.throwsAsync(s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'aborted', UploadId: other })));
  t.is(gone?.name, 'NoSuchUpload');
  const notObj = await t.throwsAsync(s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'aborted' })));
  t.is(notObj?.name, 'NotFound');
  const badPart = await t.throwsAsync(s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'x', UploadId: 'nope', PartNumber: 1, Body: 'x' })));
  t.is(badPart?.name, 'NoSuchUpload');
});

test('UploadPartCopy with x-amz-copy-source-range assembles an object from ranges', async (t) => {
  const { s3 } = t.context;
  const src = pattern(6 * MiB);
  await s3.send(new PutObjectCommand({ Bucket: 'mpu', Key: 'copy-src', Body: src }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'copied' }));
  const c1 = await s3.send(
    new UploadPartCopyCommand({ Bucket: 'mpu', Key: 'copied', UploadId, PartNumber: 1, CopySource: 'mpu/copy-src', CopySourceRange: `bytes=0-${5 * MiB - 1}` }),
  );
  const c2 = await s3.send(
    new UploadPartCopyCommand({ Bucket: 'mpu', Key: 'copied', UploadId, PartNumber: 2, CopySource: 'mpu/copy-src', CopySourceRange: `bytes=${5 * MiB}-${6 * MiB - 1}` }),
  );
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'mpu',
      Key: 'copied',
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: c1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: c2.CopyPartResult?.ETag }] },
    }),
  );
  const got = await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'copied' }));
  sameBytes(t, await bodyBytes(got.Body), src);
});

test('a bad paging parameter is refused with an error naming that parameter, not max-keys', async (t) => {
  // o12c F7: ListParts max-parts=-1 and ListMultipartUploads max-uploads=-1 said "Provided max-keys not an integer".
  const s3 = t.context.s3;
  await s3.send(new CreateBucketCommand({ Bucket: 'paging-errors' }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'paging-errors', Key: 'k' }));
  const url = t.context.gw.url;
  const cases: Array<[string, Record<string, string>, Record<string, string>, string]> = [
    ['/paging-errors/k', { uploadId: UploadId!, 'max-parts': '-1' }, {}, 'max-parts'],
    ['/paging-errors', { uploads: '', 'max-uploads': '-1' }, {}, 'max-uploads'],
    ['/paging-errors', { 'list-type': '2', 'max-keys': 'x' }, {}, 'max-keys'],
    ['/paging-errors/k', { attributes: '' }, { 'x-amz-object-attributes': 'ObjectParts', 'x-amz-max-parts': '-1' }, 'x-amz-max-parts'],
  ];
  await s3.send(new PutObjectCommand({ Bucket: 'paging-errors', Key: 'k', Body: 'x' }));
  for (const [path, query, headers, name] of cases) {
    const res = await signedSend({ url, method: 'GET', path, query, headers });
    t.is(res.status, 400, name);
    t.is(errorCode(res), 'InvalidArgument', name);
    t.true(res.body.includes(`<Message>Provided ${name} not an integer`), res.body);
    t.true(res.body.includes(`<ArgumentName>${name}</ArgumentName>`), res.body);
  }
});
