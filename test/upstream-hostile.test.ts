/**
 * Hostile bodies over an upstream (a real MinIO) and over the embedded store: malformed aws-chunked trailers,
 * lying chunk sizes and bodies cut off mid-stream. Whatever the client sends, the gateway process keeps running
 * (the test runs it in-process, so an unhandled stream error or rejection would fail the whole file), answers a 4xx
 * with a request id where it can still answer, and stores nothing.
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectsCommand, HeadObjectCommand, ListPartsCommand, PutObjectCommand, type S3ServiceException } from '@aws-sdk/client-s3';
import test from 'ava';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { minioOrExplain, startMinio, type MinioServer } from './helpers/minio.ts';
import { signRequest } from './helpers/raw.ts';
import { RawConnection } from './helpers/raw-socket.ts';

const DATA = Buffer.from('hello trailer world'.repeat(1000));
const CRC = 'x-amz-checksum-crc32';

function chunked(data: Buffer, trailer: string | undefined, chunks = 3): Buffer {
  const out: Buffer[] = [];
  const n = Math.ceil(data.length / chunks);
  for (let i = 0; i < data.length; i += n) {
    const part = data.subarray(i, i + n);
    out.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`0\r\n${trailer === undefined ? '' : `${trailer}\r\n`}\r\n`));
  return Buffer.concat(out);
}

/** A malformed trailing-checksum upload: name, wire body, x-amz-decoded-content-length, x-amz-trailer. */
const CASES: Array<[string, Buffer, number, string]> = [
  ['trailer without a value', chunked(DATA, undefined), DATA.length, CRC],
  ['trailer not base64', chunked(DATA, `${CRC}:%%%%`), DATA.length, CRC],
  ['trailer line without a colon', chunked(DATA, 'garbage-without-colon'), DATA.length, CRC],
  ['another trailer than announced', chunked(DATA, 'x-amz-checksum-sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAA='), DATA.length, CRC],
  ['wrong trailer checksum', chunked(DATA, `${CRC}:AAAAAA==`), DATA.length, CRC],
  ['decoded length too big', chunked(DATA, `${CRC}:AAAAAA==`), DATA.length + 5, CRC],
  ['decoded length too small', chunked(DATA, `${CRC}:AAAAAA==`), DATA.length - 5, CRC],
  ['chunk size not hex', Buffer.concat([Buffer.from('zz\r\n'), DATA, Buffer.from('\r\n0\r\n\r\n')]), DATA.length, CRC],
  ['chunk size lies', Buffer.concat([Buffer.from(`${(DATA.length + 100).toString(16)}\r\n`), DATA, Buffer.from('\r\n0\r\n\r\n')]), DATA.length, CRC],
  ['huge chunk size', Buffer.concat([Buffer.from('ffffffffffffffff\r\n'), DATA, Buffer.from('\r\n0\r\n\r\n')]), DATA.length, CRC],
  ['no final chunk', Buffer.concat([Buffer.from(`${DATA.length.toString(16)}\r\n`), DATA, Buffer.from('\r\n')]), DATA.length, CRC],
];

async function trailerRequest(url: string, key: string, body: Buffer, decoded: number, trailer: string, query?: Record<string, string>): Promise<Buffer> {
  const signed = await signRequest({
    url,
    method: 'PUT',
    path: `/hostile/${key}`,
    query,
    payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(decoded), 'x-amz-trailer': trailer, 'content-length': String(body.length) },
  });
  const head = [`PUT ${signed.path} HTTP/1.1`, ...Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n') + '\r\n\r\n';
  return Buffer.from(head);
}

async function stored(tg: TestGateway, key: string, bucket = 'hostile'): Promise<boolean> {
  return tg.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  );
}

function hostileSuite(name: string, start: () => Promise<{ tg: TestGateway; stop: () => Promise<void> }>): void {
  test(`${name}: malformed aws-chunked trailers and cut-off bodies never crash the gateway nor store anything`, async (t) => {
    const { tg, stop } = await start();
    try {
      await tg.s3.send(new CreateBucketCommand({ Bucket: 'hostile' }));
      for (const [i, [what, body, decoded, trailer]] of CASES.entries()) {
        const key = `case-${i}`;
        const conn = await RawConnection.open(tg.gw.url);
        try {
          conn.write(await trailerRequest(tg.gw.url, key, body, decoded, trailer));
          conn.write(body);
          const res = await conn.response({ timeoutMs: 60_000 });
          t.true(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${res.body.toString()}`);
          t.regex(res.body.toString(), /<RequestId>/, what);
        } finally {
          conn.destroy();
        }
        t.false(await stored(tg, key), `${what}: nothing stored`);
      }
      // Cut off mid-body, at several points: in a chunk, in a chunk header, in the trailer.
      const whole = chunked(DATA, `${CRC}:AAAAAA==`);
      for (const cut of [10, 5000, whole.length - 8]) {
        const key = `cut-${cut}`;
        const conn = await RawConnection.open(tg.gw.url);
        conn.write(await trailerRequest(tg.gw.url, key, whole, DATA.length, CRC));
        conn.write(whole.subarray(0, cut));
        await new Promise((r) => setTimeout(r, 200));
        conn.socket.resetAndDestroy();
        await new Promise((r) => setTimeout(r, 300));
        t.false(await stored(tg, key), `cut at ${cut}: nothing stored`);
      }
      // The same through UploadPart: nothing becomes a part.
      const { UploadId } = await tg.s3.send(new CreateMultipartUploadCommand({ Bucket: 'hostile', Key: 'mpu' }));
      const query = { partNumber: '1', uploadId: UploadId! };
      for (const [what, body, decoded, trailer] of CASES) {
        const conn = await RawConnection.open(tg.gw.url);
        try {
          conn.write(await trailerRequest(tg.gw.url, 'mpu', body, decoded, trailer, query));
          conn.write(body);
          const res = await conn.response({ timeoutMs: 60_000 });
          t.true(res.status >= 400 && res.status < 500, `UploadPart, ${what}: ${res.status} ${res.body.toString()}`);
        } finally {
          conn.destroy();
        }
      }
      const cutPart = await RawConnection.open(tg.gw.url);
      cutPart.write(await trailerRequest(tg.gw.url, 'mpu', whole, DATA.length, CRC, query));
      cutPart.write(whole.subarray(0, 5000));
      await new Promise((r) => setTimeout(r, 200));
      cutPart.socket.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 300));
      const parts = await tg.s3.send(new ListPartsCommand({ Bucket: 'hostile', Key: 'mpu', UploadId }));
      t.deepEqual(parts.Parts ?? [], [], 'no part stored');
      // Still serving.
      await tg.s3.send(new PutObjectCommand({ Bucket: 'hostile', Key: 'after', Body: 'still here' }));
      t.true(await stored(tg, 'after'));
    } finally {
      await tg.close();
      await stop();
    }
  });
}

hostileSuite('embedded', async () => ({ tg: await startTestGateway(), stop: async () => {} }));

if (minioOrExplain(test, 'upstream-hostile')) {
  hostileSuite('upstream', async () => {
    const minio: MinioServer = await startMinio();
    const tg = await startTestGateway({
      ANVIL_BACKEND: 'upstream',
      ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
      ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
      ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
    });
    return { tg, stop: () => minio.close() };
  });
}

if (minioOrExplain(test, 'upstream-refusals')) {
  test('upstream refusals keep their 4xx: a key MinIO refuses is 400 on PUT and a per-key error in DeleteObjects', async (t) => {
    const minio = await startMinio();
    const tg = await startTestGateway({
      ANVIL_BACKEND: 'upstream',
      ANVIL_UPSTREAM_ENDPOINT: minio.endpoint,
      ANVIL_UPSTREAM_ACCESS_KEY: minio.accessKey,
      ANVIL_UPSTREAM_SECRET_KEY: minio.secretKey,
    });
    try {
      await tg.s3.send(new CreateBucketCommand({ Bucket: 'refusals' }));
      // S3 takes 'a//b'; MinIO cannot store it as spelled (400 XMinioInvalidObjectName): a 400 for the client, never a 500.
      const put = (await t.throwsAsync(tg.s3.send(new PutObjectCommand({ Bucket: 'refusals', Key: 'a//b', Body: 'x' })))) as S3ServiceException;
      t.is(put.$metadata.httpStatusCode, 400);
      t.is(put.name, 'InvalidRequest');
      t.is(put.$metadata.attempts, 1, 'a client error is not retried');

      await tg.s3.send(new PutObjectCommand({ Bucket: 'refusals', Key: 'fine', Body: 'x' }));
      const out = await tg.s3.send(new DeleteObjectsCommand({ Bucket: 'refusals', Delete: { Objects: [{ Key: 'fine' }, { Key: 'a//b/../c' }] } }));
      t.deepEqual(out.Deleted?.map((d) => d.Key), ['fine']);
      t.is(out.Errors?.length, 1);
      t.is(out.Errors?.[0]?.Key, 'a//b/../c');
      t.not(out.Errors?.[0]?.Code, 'InternalError');
      t.false(await stored(tg, 'fine', 'refusals'));
    } finally {
      await tg.close();
      await minio.close();
    }
  });
}
