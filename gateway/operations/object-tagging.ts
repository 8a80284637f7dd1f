/** GetObjectTagging, PutObjectTagging, DeleteObjectTagging; the tag-set document is shared with bucket tagging. */
import { compareUtf8 } from '../../storage/utf8-order.ts';
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation, type OpResult } from '../operation.ts';
import { validateTags } from '../s3-headers.ts';
import { child, list, parseXmlBody, text } from '../xml.ts';

/** A Tagging document with the tags in key order, so every backend answers the same tag set the same way. */
export function taggingResult(tags: Record<string, string>): OpResult {
  const keys = Object.keys(tags).sort(compareUtf8);
  return xmlResult('Tagging', { TagSet: { Tag: keys.map((Key) => ({ Key, Value: tags[Key] })) } });
}

/** Parses and validates a Tagging request body (PutObjectTagging, PutBucketTagging). */
export function parseTagging(body: string, limit: number): Record<string, string> {
  const doc = parseXmlBody(body, 'Tagging', { maxElements: 2 + 3 * (limit + 1) });
  const set = child(doc, 'TagSet');
  if (set === undefined) throw new S3Error('MalformedXML');
  const tags: Record<string, string> = {};
  for (const t of list(set, 'Tag')) {
    const k = text(t, 'Key');
    const v = text(t, 'Value');
    // Both are required (S3 API reference, Tag data type): a missing Value is a document that does not validate, an
    // empty `<Value></Value>` (what SDKs send for "") is the empty value.
    if (k === undefined || v === undefined) throw new S3Error('MalformedXML');
    if (Object.hasOwn(tags, k)) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key');
    tags[k] = v;
  }
  validateTags(tags, limit);
  return tags;
}

export const GetObjectTagging: Operation = async (op) => taggingResult(await op.services.backend.getObjectTagging(op.bucket, op.key));

export const PutObjectTagging: Operation = async (op) => {
  const tags = parseTagging(await op.readText(64 * 1024), 10);
  await op.access.ownerCheck(op.bucket, op.key)?.();
  await op.services.backend.putObjectTagging(op.bucket, op.key, tags);
  return {};
};

export const DeleteObjectTagging: Operation = async (op) => {
  await op.services.backend.deleteObjectTagging(op.bucket, op.key);
  return { status: 204 };
};
