/**
 * PostObject: the file of a browser form upload, already authenticated by its POST policy (middleware/post-object.ts)
 * and authorized on the form's key, stored with the form's metadata; the policy's content-length-range is enforced
 * while it streams. Answers success_action_redirect (303), or success_action_status 200, 201 (PostResponse) or
 * 204 (the default), as the PostObject API reference describes.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import type { PolicyLimits, PostForm } from '../post-policy.ts';
import { writeMetaFromHeaders } from '../s3-headers.ts';
import { parseTagging } from './object-tagging.ts';

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

export const PostObject: Operation = async (op) => {
  const form = op.form;
  if (!form) throw new S3Error('MalformedPOSTRequest');
  const body = new SizeRange(form.limits);
  // pipeline keeps an error listener on both ends, so a refusal before storage starts reading is not uncaught;
  // storage sees it when it reads the destroyed stream.
  pipeline(form.file, body, () => {});
  const stored = await op.services.backend.putObject({
    bucket: op.bucket,
    key: op.key,
    meta: writeMetaFromHeaders(headersOf(form)),
    // The `tagging` field is a Tagging document, as in PutObjectTagging (PostObject API reference).
    tags: form.fields.has('tagging') ? parseTagging(form.fields.get('tagging')!, 10) : undefined,
    body,
  });
  const etag = `"${stored.etag}"`;
  const location = `/${op.bucket}/${encodeURIComponent(op.key).replace(/%2F/g, '/')}`;
  const redirect = form.fields.get('success_action_redirect') ?? form.fields.get('redirect');
  if (redirect) {
    try {
      const url = new URL(redirect);
      url.searchParams.set('bucket', op.bucket);
      url.searchParams.set('key', op.key);
      url.searchParams.set('etag', etag);
      return { status: 303, headers: { location: url.toString(), etag } };
    } catch {
      // S3 ignores a redirect that is not a URL and answers with the status instead.
    }
  }
  const status = form.fields.get('success_action_status');
  if (status === '201') {
    const result = xmlResult('PostResponse', { Location: location, Bucket: op.bucket, Key: op.key, ETag: etag }, 201);
    result.headers = { ...result.headers, etag, location };
    return result;
  }
  return { status: status === '200' ? 200 : 204, headers: { etag, location } };
};
