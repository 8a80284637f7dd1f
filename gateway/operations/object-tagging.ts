/** GetObjectTagging, PutObjectTagging, DeleteObjectTagging. */
import { S3Error } from '../errors.ts';
import { xmlResult, type Operation } from '../operation.ts';
import { validateTags } from '../s3-headers.ts';
import { list, parseXmlBody, text } from '../xml.ts';

export const GetObjectTagging: Operation = async (op) => {
  const tags = await op.services.backend.getObjectTagging(op.bucket, op.key);
  return xmlResult('Tagging', { TagSet: { Tag: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } });
};

export const PutObjectTagging: Operation = async (op) => {
  const doc = parseXmlBody(await op.readText(64 * 1024), 'Tagging');
  const set = doc.TagSet;
  if (set !== undefined && set !== '' && (typeof set !== 'object' || set === null)) throw new S3Error('MalformedXML');
  const tags: Record<string, string> = {};
  for (const t of list((set || {}) as Record<string, unknown>, 'Tag')) {
    const k = text(t, 'Key');
    const v = text(t, 'Value') ?? '';
    if (k === undefined) throw new S3Error('MalformedXML');
    if (k in tags) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key');
    tags[k] = v;
  }
  validateTags(tags);
  await op.services.backend.putObjectTagging(op.bucket, op.key, tags);
  return {};
};

export const DeleteObjectTagging: Operation = async (op) => {
  await op.services.backend.deleteObjectTagging(op.bucket, op.key);
  return { status: 204 };
};
