/**
 * Object helpers the backend class delegates to: part sizes of multipart objects, and PUTs whose length the client
 * did not declare (sent as an internal multipart upload, one buffered part at a time).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ChecksumAlgorithm, CopyObjectInput, ObjectMeta, PutObjectInput, StoredChecksum } from '../backend.ts';
import { checkConditions, normalizeEtag } from '../conditions.ts';
import { BadDigestError, IncompleteBodyError } from '../errors.ts';
import { sendBody } from './body.ts';
import type { UpstreamClients } from './client.ts';
import { translate } from './errors.ts';
import type { Layout, Location } from './layout.ts';
import { checksumField, checksumOf, checksumUpload, copyConditionFields, metaOf, tagRecord, taggingHeader, writeConditionFields, writeFields } from './wire.ts';

/** Part size of the internal multipart upload behind a PUT of unknown length: memory held per such PUT. */
const UNSIZED_PART = 8 * 1024 * 1024;
/** The algorithms S3 can keep as a FULL_OBJECT checksum of a multipart object (CRCs combine; SHAs do not). */
const FULL_OBJECT_ALGORITHMS: ReadonlySet<ChecksumAlgorithm> = new Set(['CRC32', 'CRC32C', 'CRC64NVME']);

/**
 * The fields that make a multipart upload store `algorithm` as a FULL_OBJECT checksum, as a single PutObject stores
 * it; empty for no algorithm, or one multipart cannot keep whole (SHA1, SHA256).
 */
function fullObjectUpload(algorithm: ChecksumAlgorithm | undefined): { ChecksumAlgorithm?: ChecksumAlgorithm; ChecksumType?: 'FULL_OBJECT' } {
  return algorithm && FULL_OBJECT_ALGORITHMS.has(algorithm) ? { ChecksumAlgorithm: algorithm, ChecksumType: 'FULL_OBJECT' } : {};
}

/** CompleteMultipartUpload's fields for the whole object's checksum, when fullObjectUpload() asked for one. */
function fullObjectCompletion(checksum: StoredChecksum | undefined): Record<string, string> {
  if (!checksum || (checksum.type && checksum.type !== 'FULL_OBJECT') || !FULL_OBJECT_ALGORITHMS.has(checksum.algorithm)) return {};
  return { [checksumField(checksum.algorithm)]: checksum.value, ChecksumType: 'FULL_OBJECT' };
}

/** Concurrent HEADs when part sizes have to be asked part by part. */
const PART_HEAD_CONCURRENCY = 8;

async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw translate(err);
  }
}

/**
 * Sizes of the `count` parts of a multipart object: GetObjectAttributes when the upstream lists parts (MinIO does;
 * AWS only for objects uploaded with checksums), else one HEAD ?partNumber=N per part.
 */
export async function partSizes(clients: UpstreamClients, loc: Location, count: number): Promise<{ sizes: number[]; checksums?: string[] }> {
  const s3 = clients.retrying;
  try {
    const sizes: number[] = [];
    const checksums: Array<string | undefined> = [];
    let marker: string | undefined;
    for (;;) {
      const out = await s3.send(
        new GetObjectAttributesCommand({ ...loc, ObjectAttributes: ['ObjectParts'], MaxParts: 1000, PartNumberMarker: marker }),
      );
      const parts = out.ObjectParts?.Parts ?? [];
      for (const p of parts) {
        sizes.push(p.Size ?? -1);
        checksums.push(p.ChecksumCRC32 ?? p.ChecksumCRC32C ?? p.ChecksumCRC64NVME ?? p.ChecksumSHA1 ?? p.ChecksumSHA256);
      }
      if (!out.ObjectParts?.IsTruncated || parts.length === 0) break;
      marker = out.ObjectParts.NextPartNumberMarker;
    }
    if (sizes.length === count && sizes.every((s) => s >= 0)) {
      return checksums.every((c) => c !== undefined) ? { sizes, checksums: checksums as string[] } : { sizes };
    }
  } catch {
    // Not every upstream implements GetObjectAttributes; the per-part HEADs below work everywhere.
  }
  const sizes = new Array<number>(count).fill(0);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const out = await call(() => s3.send(new HeadObjectCommand({ ...loc, PartNumber: i + 1 })));
      sizes[i] = out.ContentLength ?? 0;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PART_HEAD_CONCURRENCY, count) }, worker));
  return { sizes };
}

/**
 * A PUT without a declared length, or with write conditions. S3 needs Content-Length, so bodies up to one part go
 * up as one PutObject and longer ones as a multipart upload that is aborted on any failure (nothing partial ever
 * becomes visible); such objects get a multipart ETag. Write conditions ride on that PutObject or on the
 * CompleteMultipartUpload, so the upstream checks them atomically with the commit, but only once the whole body is
 * in hand: an upstream that locks the key for a conditional write (MinIO) then holds it for an upload at loopback
 * speed, never for the client's. A client checksum of the CRC family is stored as the object's FULL_OBJECT
 * checksum either way (each part carries its own, computed by the SDK, and the completion the client's whole-body
 * value), so HEAD and GetObjectAttributes report it as after a plain PutObject. A declared length is enforced.
 * Errors of the client's stream are rethrown as they are.
 */
export async function putUnsized(
  clients: UpstreamClients,
  common: CreateMultipartUploadCommandInput & Location,
  input: PutObjectInput,
): Promise<ObjectMeta> {
  const s3 = clients.retrying;
  const md5 = createHash('md5');
  const parts: CompletedPart[] = [];
  let chunks: Buffer[] = [];
  let buffered = 0;
  let total = 0;
  let uploadId: string | undefined;
  const loc = { Bucket: common.Bucket, Key: common.Key };
  const whole = fullObjectUpload(input.meta.checksum?.algorithm ?? input.announcedChecksum);
  const flush = async (): Promise<void> => {
    uploadId ??= (await call(() => s3.send(new CreateMultipartUploadCommand({ ...common, ...whole })))).UploadId!;
    const Body = Buffer.concat(chunks);
    chunks = [];
    buffered = 0;
    const PartNumber = parts.length + 1;
    const out = await call(() =>
      s3.send(new UploadPartCommand({ ...loc, UploadId: uploadId, PartNumber, Body, ContentLength: Body.length, ChecksumAlgorithm: whole.ChecksumAlgorithm })),
    );
    const partChecksum = whole.ChecksumAlgorithm ? { [checksumField(whole.ChecksumAlgorithm)]: out[checksumField(whole.ChecksumAlgorithm)] } : {};
    parts.push({ PartNumber, ETag: out.ETag, ...partChecksum });
  };
  try {
    for await (const chunk of input.body) {
      const b = chunk as Buffer;
      md5.update(b);
      total += b.length;
      if (input.size !== undefined && total > input.size) throw new IncompleteBodyError(`body is longer than the declared ${input.size} bytes`);
      chunks.push(b);
      buffered += b.length;
      if (buffered >= UNSIZED_PART) await flush();
    }
    if (input.size !== undefined && total !== input.size) throw new IncompleteBodyError(`body ended after ${total} of ${input.size} bytes`);
    const digest = md5.digest();
    if (input.contentMd5 && !digest.equals(input.contentMd5)) throw new BadDigestError('Content-MD5 does not match the body');
    const checksum = input.finalChecksum?.() ?? input.meta.checksum;
    await input.beforeCommit?.();
    let etag: string;
    if (uploadId === undefined) {
      const Body = Buffer.concat(chunks);
      etag = (await call(() => s3.send(new PutObjectCommand({ ...common, ...checksumUpload({}, checksum), Body, ContentLength: Body.length })))).ETag ?? '';
    } else {
      if (buffered > 0) await flush();
      const out = await call(() =>
        s3.send(new CompleteMultipartUploadCommand({ ...loc, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...writeConditionFields(input.writeConditions), ...fullObjectCompletion(checksum) })),
      );
      etag = out.ETag ?? '';
    }
    return {
      key: input.key,
      size: total,
      etag: normalizeEtag(etag),
      lastModified: new Date(),
      headers: input.meta.headers,
      userMetadata: input.meta.userMetadata,
      checksum,
    };
  } catch (err) {
    if (uploadId !== undefined) await s3.send(new AbortMultipartUploadCommand({ ...loc, UploadId: uploadId })).catch(() => {});
    throw err;
  }
}

/** What copyPartThrough() copies: bytes start..end of `src` (pinned to `etag`) as part `partNumber` of `dest`. */
interface PartThrough {
  src: Location;
  dest: Location;
  uploadId: string;
  partNumber: number;
  start: number;
  end: number;
  etag: string;
  algorithm: ChecksumAlgorithm;
}

/**
 * One part of a conditional copy streamed through the gateway (a ranged GetObject into an UploadPart whose checksum
 * the SDK computes), for a source with a CRC checksum: an upstream part made by UploadPartCopy carries no checksum
 * on MinIO, which then refuses to complete a FULL_OBJECT upload. Nothing is buffered; the bytes cross the gateway.
 */
async function copyPartThrough(clients: UpstreamClients, p: PartThrough): Promise<CompletedPart> {
  const size = p.end - p.start + 1;
  const source =
    size > 0
      ? (await call(() => clients.lean.send({ method: 'GET', loc: p.src, headers: { range: `bytes=${p.start}-${p.end}`, 'if-match': p.etag } }))).body
      : Readable.from([]);
  const out = await sendBody({
    body: source,
    size,
    send: (Body, abortSignal) =>
      clients.streaming.send(
        new UploadPartCommand({ ...p.dest, UploadId: p.uploadId, PartNumber: p.partNumber, Body, ContentLength: size, ChecksumAlgorithm: p.algorithm }),
        { abortSignal },
      ),
  }).finally(() => source.destroy());
  const field = checksumField(p.algorithm);
  return { PartNumber: p.partNumber, ETag: out.ETag, [field]: out[field] };
}

/** Largest part a conditional copy sends in one UploadPartCopy (S3's part limit). */
const COPY_PART = 5 * 1024 ** 3;

/**
 * A CopyObject with If-Match / If-None-Match on the destination. Upstreams do not all honour these on CopyObject
 * (MinIO ignores them), but every one that implements conditional writes honours them on
 * CompleteMultipartUpload: so the copy runs as a server-side multipart copy whose completion carries the
 * conditions, atomic upstream. The copy then has a multipart ETag (`…-N`); a source's FULL_OBJECT CRC checksum
 * is stored with it as a plain CopyObject keeps it, its parts then streamed through the gateway (copyPartThrough). Metadata and tags follow the directives.
 * Resolves to the new object's ETag.
 */
export async function conditionalCopy(clients: UpstreamClients, layout: Layout, input: CopyObjectInput): Promise<string> {
  const s3 = clients.retrying;
  const src = layout.object(input.source.bucket, input.source.key);
  const dest = layout.object(input.dest.bucket, input.dest.key);
  const head = await call(() => s3.send(new HeadObjectCommand({ ...src, ChecksumMode: 'ENABLED' })));
  const checksum = checksumOf(head);
  const whole = fullObjectUpload(checksum?.type === 'FULL_OBJECT' ? checksum.algorithm : undefined);
  const meta = input.replaceMeta ?? metaOf(input.source.key, head);
  const tags = input.replaceTags ?? tagRecord((await call(() => s3.send(new GetObjectTaggingCommand(src)))).TagSet);
  const size = head.ContentLength ?? 0;
  const uploadId = (await call(() => s3.send(new CreateMultipartUploadCommand({ ...dest, ...writeFields(meta), Tagging: taggingHeader(tags), ...whole })))).UploadId!;
  try {
    const parts: CompletedPart[] = [];
    const etag = `"${normalizeEtag(head.ETag ?? '')}"`;
    if (whole.ChecksumAlgorithm) checkConditions(input.source.conditions, metaOf(input.source.key, head), 'copy');
    for (let start = 0, n = 1; n === 1 || start < size; start += COPY_PART, n++) {
      const end = Math.min(size, start + COPY_PART) - 1;
      if (whole.ChecksumAlgorithm) {
        parts.push(await copyPartThrough(clients, { src, dest, uploadId, partNumber: n, start, end, etag, algorithm: whole.ChecksumAlgorithm }));
        continue;
      }
      const out = await call(() =>
        s3.send(
          new UploadPartCopyCommand({
            ...dest,
            UploadId: uploadId,
            PartNumber: n,
            CopySource: layout.copySource(input.source.bucket, input.source.key),
            CopySourceRange: size > 0 ? `bytes=${start}-${end}` : undefined,
            ...copyConditionFields(input.source.conditions),
            // Every part comes from the version whose metadata was read.
            CopySourceIfMatch: input.source.conditions?.ifMatch ?? etag,
          }),
        ),
      );
      parts.push({ PartNumber: n, ETag: out.CopyPartResult?.ETag });
    }
    const out = await call(() =>
      s3.send(new CompleteMultipartUploadCommand({ ...dest, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...writeConditionFields(input.writeConditions), ...fullObjectCompletion(checksum) })),
    );
    return normalizeEtag(out.ETag ?? '');
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ ...dest, UploadId: uploadId })).catch(() => {});
    throw err;
  }
}
