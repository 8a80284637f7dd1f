/**
 * PostObject: the file of a browser form upload, already authenticated by its POST policy (middleware/post-object.ts)
 * and authorized on the form's key, stored with the form's metadata; the policy's content-length-range is enforced
 * while it streams. Answers success_action_redirect (303), or success_action_status 200, 201 (PostResponse) or
 * 204 (the default), as the PostObject API reference describes. A Content-MD5 or x-amz-checksum-* field is verified
 * against the file as for PutObject (BadDigest, nothing stored) and the checksum kept, never ignored.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { planBody } from '../auth/body-verifier.ts';
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import type { PolicyLimits, PostForm } from '../post-policy.ts';
import { announcedChecksum, checksumHeaders, headerChecksum, writeMetaFromHeaders } from '../s3-headers.ts';
import { parseTagging } from './object-tagging.ts';
import { parseContentMd5 } from './put-object.ts';

/** Fails the stream as soon as the file grows past the policy's maximum, and at its end when under the minimum. */
class SizeRange extends Transform {
  private seen = 0;
  constructor(private readonly limits: PolicyLimits) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.limits.maxSize !== undefined && this.seen > this.limits.maxSize) {
      return done(new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size'));
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    if (this.limits.minSize !== undefined && this.seen < this.limits.minSize) {
      return done(new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size'));
    }
    done();
  }
}

/** The form's fields as the headers PutObject would have carried (Content-Type, x-amz-meta-*, …). */
function headersOf(form: PostForm): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of form.fields) {
    if (['content-type', 'cache-control', 'content-disposition', 'content-encoding', 'expires'].includes(name) || name.startsWith('x-amz-meta-')) out[name] = value;
  }
  if (out['content-type'] === undefined && form.fileType && form.fileType !== 'application/octet-stream') out['content-type'] = form.fileType;
  return out;
}

/**
 * The form's integrity fields as the headers PutObject would have carried: Content-MD5 and x-amz-checksum-<algorithm>
 * ("To ensure that data is not corrupted … use the Content-MD5 form field", PostObject API reference), and
 * x-amz-checksum-algorithm, which asks S3 to compute and keep that checksum.
 */
function integrityHeadersOf(form: PostForm): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of form.fields) {
    if (name === 'x-amz-checksum-algorithm' || name === 'x-amz-sdk-checksum-algorithm') out['x-amz-sdk-checksum-algorithm'] = value;
    else if (name === 'content-md5' || name.startsWith('x-amz-checksum-')) out[name] = value;
  }
  return out;
}

export const PostObject: Operation = async (op) => {
  const form = op.form;
  if (!form) throw new S3Error('MalformedPOSTRequest');
  const integrity = integrityHeadersOf(form);
  // The file verifies as a PutObject body would (malformed values InvalidRequest/InvalidDigest before anything is
  // read, a mismatch BadDigest before storage commits); there is no request signature over it to check.
  const plan = planBody({ auth: undefined, headers: integrity });
  const md5 = parseContentMd5(integrity['content-md5']);
  const meta = writeMetaFromHeaders(headersOf(form));
  const sent = headerChecksum(integrity);
  if (sent) meta.checksum = sent;
  // pipeline keeps an error listener on every stream, so a refusal before storage starts reading is not uncaught;
  // storage sees it when it reads the destroyed stream.
  pipeline(form.file, new SizeRange(form.limits), plan.stream, () => {});
  const stored = await op.services.backend.putObject({
    bucket: op.bucket,
    key: op.key,
    meta,
    // The `tagging` field is a Tagging document, as in PutObjectTagging (PostObject API reference).
    tags: form.fields.has('tagging') ? parseTagging(form.fields.get('tagging')!, 10) : undefined,
    body: plan.stream,
    contentMd5: md5,
    finalChecksum: () => plan.checksum(),
    announcedChecksum: announcedChecksum(integrity),
    beforeCommit: op.access.ownerCheck(op.bucket, op.key),
  });
  const sum = plan.checksum();
  const etag = `"${stored.etag}"`;
  const stamped = { etag, ...(sum ? checksumHeaders(sum) : {}) };
  const location = `/${op.bucket}/${encodeURIComponent(op.key).replace(/%2F/g, '/')}`;
  const redirect = form.fields.get('success_action_redirect') ?? form.fields.get('redirect');
  if (redirect) {
    try {
      const url = new URL(redirect);
      url.searchParams.set('bucket', op.bucket);
      url.searchParams.set('key', op.key);
      url.searchParams.set('etag', etag);
      return { status: 303, headers: { location: url.toString(), ...stamped } };
    } catch {
      // S3 ignores a redirect that is not a URL and answers with the status instead.
    }
  }
  const status = form.fields.get('success_action_status');
  if (status === '201') {
    const result = xmlResult('PostResponse', { Location: location, Bucket: op.bucket, Key: op.key, ETag: etag }, 201);
    result.headers = { ...result.headers, location, ...stamped };
    return result;
  }
  return { status: status === '200' ? 200 : 204, headers: { location, ...stamped } };
};
