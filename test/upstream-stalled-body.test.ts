/**
 * A client that stops sending its body is the client's fault on every backend: 400 RequestTimeout once the
 * gateway's idle timeout passes, never 503 (which SDKs retry), and nothing stored. Over MinIO the upstream request
 * timeout is set below the idle timeout here, so the upstream gives up on the idle upload first: the race the
 * gateway used to lose (it answered 503 ServiceUnavailable). Expected answer: S3 Error Responses, RequestTimeout
 * ("Your socket connection to the server was not read from or written to within the timeout period", 400).
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { directClient, minioOrExplain, startMinio, upstreamEnv } from './helpers/minio.ts';
import { signedSend } from './helpers/raw.ts';
import { RawConnection, signedRequestBytes } from './helpers/raw-socket.ts';

const test = anyTest as TestFn<unknown>;

/** The gateway's idle timeout; the upstream's request timeout is well below it. */
const IDLE_MS = 5000;
const UPSTREAM_TIMEOUT_MS = 1000;

/** Sends the head of a 1 MiB upload and 1 KiB of its body, then nothing; asserts the answer is 400 RequestTimeout. */
async function stall(t: ExecutionContext, f: Flavour, path: string, extra: { headers?: Record<string, string>; query?: Record<string, string> } = {}): Promise<void> {
  const conn = await RawConnection.open(f.gw.gw.url);
  const { head } = await signedRequestBytes({ url: f.gw.gw.url, method: 'PUT', path, declaredLength: 1024 * 1024, ...extra });
  conn.write(head);
  conn.write(Buffer.alloc(1024, 7));
  const res = await conn.response({ timeoutMs: 120_000 });
  t.is(res.status, 400, res.body.toString());
  t.regex(res.body.toString(), /<Code>RequestTimeout<\/Code>/);
  t.falsy(res.headers['retry-after']);
  conn.destroy();
}

onEachBackend(
  test,
  'upstream-stalled-body',
  (it) => {
    it('a stalled PutObject body is 400 RequestTimeout, never 503, and nothing is stored', async (t, f) => {
      const bucket = `stall-${randomBytes(4).toString('hex')}`;
      await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await stall(t, f, `/${bucket}/plain`);
      await stall(t, f, `/${bucket}/conditional`, { headers: { 'if-none-match': '*' } });
      for (const key of ['plain', 'conditional']) {
        await t.throwsAsync(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), { name: 'NotFound' }, `${key} was not stored`);
      }
      // The gateway still serves, and the upstream was not marked down by the client's stall.
      await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'after', Body: 'still serving' }));
    });

    it('a stalled UploadPart body is 400 RequestTimeout and leaves no part', async (t, f) => {
      const bucket = `stall-${randomBytes(4).toString('hex')}`;
      await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' }));
      await stall(t, f, `/${bucket}/mp`, { query: { partNumber: '1', uploadId: up.UploadId! } });
      const parts = await f.gw.s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp', UploadId: up.UploadId }));
      t.deepEqual(parts.Parts ?? [], []);
    });
  },
  { ANVIL_IDLE_TIMEOUT_MS: String(IDLE_MS), ANVIL_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
);

if (minioOrExplain(test, 'upstream-stalled-body (prefix mapping)')) {
  test('prefix mapping: a small body that fails its check while the bucket is checked is answered at once, not after the upstream timeout', async (t) => {
    const minio = await startMinio();
    await directClient(minio).send(new CreateBucketCommand({ Bucket: 'shared-stall' }));
    // An upstream timeout no test waits out: a body the upstream waited for would hang the request.
    const gw = await startTestGateway(upstreamEnv(minio, { ANVIL_UPSTREAM_MAPPING: 'prefix', ANVIL_UPSTREAM_BUCKET: 'shared-stall', ANVIL_UPSTREAM_TIMEOUT_MS: '600000' }));
    const withinSeconds = <T>(p: Promise<T>, what: string) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within 20 s`)), 20_000).unref())]);
    try {
      await gw.s3.send(new CreateBucketCommand({ Bucket: 'checked' }));
      const up = await gw.s3.send(new CreateMultipartUploadCommand({ Bucket: 'checked', Key: 'mp' }));
      const otherHash = createHash('sha256').update('another body').digest('hex');
      for (const [what, query] of [['PutObject', undefined], ['UploadPart', { partNumber: '1', uploadId: up.UploadId! }]] as const) {
        const res = await withinSeconds(signedSend({ url: gw.gw.url, method: 'PUT', path: '/checked/mp', query, body: Buffer.from('abc'), payloadHash: otherHash }), what);
        t.is(res.status, 400, `${what}: ${res.body}`);
        t.regex(res.body, /<Code>XAmzContentSHA256Mismatch<\/Code>/, what);
      }
      const crc = await withinSeconds(signedSend({ url: gw.gw.url, method: 'PUT', path: '/checked/crc', body: Buffer.from('abc'), headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }), 'bad CRC32');
      t.is(crc.status, 400, crc.body);
      t.regex(crc.body, /<Code>BadDigest<\/Code>/);
      await t.throwsAsync(gw.s3.send(new HeadObjectCommand({ Bucket: 'checked', Key: 'crc' })), { name: 'NotFound' });
    } finally {
      await gw.close();
      await minio.close();
    }
  });
}
