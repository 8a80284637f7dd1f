/** ListBuckets: the buckets the caller may learn the names of, and nothing about the others. */
import { xmlResult, type Operation } from '../operation.ts';
import { isoTime } from '../xml.ts';

export const ListBuckets: Operation = async (op) => {
  const all = await op.services.backend.listBuckets();
  const visible = new Set(await op.access.visibleBuckets(all.map((b) => b.name)));
  const buckets = all.filter((b) => visible.has(b.name));
  return xmlResult('ListAllMyBucketsResult', {
    Owner: { ID: op.principal.tenant, DisplayName: op.principal.tenant },
    Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoTime(b.createdAt) })) },
  });
};
