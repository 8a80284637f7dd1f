/**
 * A client that stops sending its body is the client's fault on every backend: 400 RequestTimeout once the
 * gateway's idle timeout passes, never 503 (which SDKs retry), and nothing stored. Over MinIO the upstream request
 * timeout is set below the idle timeout here, so the upstream gives up on the idle upload first: the race the
 * gateway used to lose (it answered 503 ServiceUnavailable). Expected answer: S3 Error Responses, RequestTimeout
 * ("Your socket connection to the server was not read from or written to within the timeout period", 400).
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
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
