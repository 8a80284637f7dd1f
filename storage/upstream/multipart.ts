/**
 * Multipart uploads mapped one-to-one onto upstream uploads: the upstream uploadId is ours. Each upload also has a
 * record (layout.ts) holding what the upstream will not tell: its metadata for ListParts, and its place in the
 * listing of uploads.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type {
  CompleteUploadInput,
  CreateUploadInput,
  ListPartsResult,
  ObjectWriteMeta,
  PartInfo,
  UploadChecksum,
  UploadInfo,
  UploadPartCopyInput,
  UploadPartInput,
} from '../backend.ts';
import { normalizeEtag } from '../conditions.ts';
import { InvalidPartOrderError, InvalidRangeError, InvalidRequestError, missingPartChecksumError, NoSuchKeyError } from '../errors.ts';
import { sendBody } from './body.ts';
import type { Buckets } from './buckets.ts';
import { isNotFound } from './buckets.ts';
import type { UpstreamClients } from './client.ts';
import { faultCode, faultStatus, translate } from './errors.ts';
import type { Layout } from './layout.ts';
import { trailerOf } from './lean-wire.ts';
import { sendableConditions } from './preconditions.ts';
import { checksumField, checksumHeaders, checksumOf, copyConditionFields, metaOf, objectFieldsOf, taggingHeader, writeConditionFields, writeFields } from './wire.ts';

/** What an upload record holds. */
interface UploadRecord {
  key: string;
  uploadId: string;
  initiated: string;
  meta: ObjectWriteMeta;
  checksum?: UploadChecksum;
}

/** The multipart half of the upstream backend. */
export class Multipart {
  constructor(
    private readonly clients: UpstreamClients,
    private readonly layout: Layout,
    private readonly buckets: Buckets,
  ) {}

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw translate(err);
    }
  }

  /**
   * CreateMultipartUpload and its record. An upload is something the bucket's owner sees (ListMultipartUploads):
   * when the bucket was re-created meanwhile it is aborted and NoSuchBucketError thrown (Buckets.confirm).
   */
  async create(input: CreateUploadInput): Promise<UploadInfo> {
    const started = await this.buckets.writable(input.bucket);
    await input.beforeCommit?.();
    const s3 = this.clients.retrying;
    const out = await this.call(() =>
      s3.send(
        new CreateMultipartUploadCommand({
          ...this.layout.object(input.bucket, input.key),
          ...writeFields(input.meta),
          Tagging: taggingHeader(input.tags),
          ...(input.checksum ? { ChecksumAlgorithm: input.checksum.algorithm, ChecksumType: input.checksum.type } : {}),
        }),
      ),
    );
    const uploadId = out.UploadId!;
    const initiated = new Date();
    const record: UploadRecord = { key: input.key, uploadId, initiated: initiated.toISOString(), meta: input.meta, ...(input.checksum ? { checksum: input.checksum } : {}) };
    try {
      await s3.send(
        new PutObjectCommand({ ...this.layout.uploadRecord(input.bucket, input.key, uploadId), Body: JSON.stringify(record), ContentType: 'application/json' }),
      );
    } catch (err) {
      // An upload nobody can list or describe would linger unseen: give it up.
      await s3.send(new AbortMultipartUploadCommand({ ...this.layout.object(input.bucket, input.key), UploadId: uploadId })).catch(() => {});
      throw translate(err);
    }
    await this.buckets.confirm(input.bucket, started, async () => {
      await s3.send(new AbortMultipartUploadCommand({ ...this.layout.object(input.bucket, input.key), UploadId: uploadId })).catch(() => {});
      await this.dropRecord(input.bucket, input.key, uploadId);
    });
    return { key: input.key, uploadId, initiated, ...(input.checksum ? { checksum: input.checksum } : {}) };
  }

  async uploadPart(input: UploadPartInput): Promise<PartInfo> {
    if (input.size === undefined) {
      throw new InvalidRequestError('the upstream backend needs the part length: send Content-Length or x-amz-decoded-content-length');
    }
    const size = input.size;
    // Without a client checksum, the upload's algorithm (if any) is asked for, so the SDK computes it for the part.
    const known = input.finalChecksum?.() ?? input.checksum;
    const wanted = input.announcedChecksum || known ? undefined : (await this.readRecord(input.bucket, input.key, input.uploadId))?.checksum?.algorithm;
    const loc = this.layout.object(input.bucket, input.key);
    // The upload's algorithm asked for a part without a client checksum: the SDK computes it (nobody else has).
    const out = wanted
      ? await sendBody({
          body: input.body,
          size,
          send: (Body, abortSignal) =>
            this.clients.streaming.send(
              new UploadPartCommand({ ...loc, UploadId: input.uploadId, PartNumber: input.partNumber, Body, ContentLength: size, ContentMD5: input.contentMd5?.toString('base64'), ChecksumAlgorithm: wanted }),
              { abortSignal },
            ),
          beforeEnd: input.beforeCommit,
        })
      : await sendBody({
          body: input.body,
          size,
          send: (stream, signal) =>
            this.clients.lean
              .send({
                method: 'PUT',
                loc,
                query: { partNumber: String(input.partNumber), uploadId: input.uploadId },
                headers: { 'content-type': 'application/octet-stream', ...checksumHeaders(known), 'content-md5': input.contentMd5?.toString('base64') },
                body: { stream, size, trailer: trailerOf(input, known) },
                signal,
              })
              .then((res) => {
                res.body.resume();
                return objectFieldsOf(res.headers);
              }),
          beforeEnd: input.beforeCommit,
        });
    return {
      partNumber: input.partNumber,
      etag: normalizeEtag(out.ETag ?? ''),
      size,
      lastModified: new Date(),
      checksum: input.finalChecksum?.() ?? checksumOf(out),
    };
  }

  async uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo> {
    const s3 = this.clients.retrying;
    const src = input.source;
    // The source's size: the part's size for a whole-object copy, and InvalidRange's size for a bad range.
    const head = await s3.send(new HeadObjectCommand(this.layout.object(src.bucket, src.key))).catch(async (err: unknown) => {
      if (!isNotFound(err)) throw translate(err);
      await this.buckets.head(src.bucket);
      throw new NoSuchKeyError(`no such key ${src.key}`);
    });
    const total = head.ContentLength ?? 0;
    if (src.range && (src.range.start > src.range.end || src.range.end >= total)) throw new InvalidRangeError(total);
    const { conditions } = await sendableConditions(src.conditions, async () => metaOf(src.key, head), 'copy');
    await input.beforeCommit?.();
    try {
      const out = await s3.send(
        new UploadPartCopyCommand({
          ...this.layout.object(input.bucket, input.key),
          UploadId: input.uploadId,
          PartNumber: input.partNumber,
          CopySource: this.layout.copySource(src.bucket, src.key),
          CopySourceRange: src.range ? `bytes=${src.range.start}-${src.range.end}` : undefined,
          ...copyConditionFields(conditions),
        }),
      );
      const size = src.range ? src.range.end - src.range.start + 1 : total;
      return {
        partNumber: input.partNumber,
        etag: normalizeEtag(out.CopyPartResult?.ETag ?? ''),
        size,
        lastModified: out.CopyPartResult?.LastModified ?? new Date(),
      };
    } catch (err) {
      if (faultStatus(err) === 416) throw new InvalidRangeError(total);
      throw translate(err);
    }
  }

  /** Completes upstream and drops the record; the new object's ETag (the caller reads its metadata). */
  async complete(input: CompleteUploadInput): Promise<string> {
    for (let i = 1; i < input.parts.length; i++) {
      if (input.parts[i]!.partNumber <= input.parts[i - 1]!.partNumber) throw new InvalidPartOrderError('parts are not in ascending order');
    }
    const algorithm = input.parts.some((p) => p.checksum !== undefined)
      ? (await this.readRecord(input.bucket, input.key, input.uploadId))?.checksum?.algorithm
      : undefined;
    let etag: string;
    try {
      const out = await this.clients.retrying.send(
        new CompleteMultipartUploadCommand({
          ...this.layout.object(input.bucket, input.key),
          UploadId: input.uploadId,
          MultipartUpload: { Parts: input.parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${normalizeEtag(p.etag)}"`, ...(p.checksum && algorithm ? { [checksumField(algorithm)]: p.checksum } : {}) })) },
          ...writeConditionFields(input.writeConditions),
          ...(input.checksum ? { [checksumField(input.checksum.algorithm)]: input.checksum.value, ChecksumType: input.checksum.type ?? 'FULL_OBJECT' } : {}),
        }),
      );
      etag = normalizeEtag(out.ETag ?? '');
    } catch (err) {
      throw (await this.missingPartChecksum(err, input)) ?? translate(err);
    }
    await this.dropRecord(input.bucket, input.key, input.uploadId);
    return etag;
  }

  /**
   * S3's answer when a composite-checksum upload is completed without a part's checksum (InvalidRequest, as the
   * embedded store gives), for an upstream that calls it InvalidPart (MinIO); undefined for any other failure. Asked
   * only once the upstream refused, so a successful completion costs no extra call.
   */
  private async missingPartChecksum(err: unknown, input: CompleteUploadInput): Promise<Error | undefined> {
    const bare = input.parts.find((p) => p.checksum === undefined);
    if (faultCode(err) !== 'InvalidPart' || !bare) return undefined;
    const settings = (await this.readRecord(input.bucket, input.key, input.uploadId).catch(() => undefined))?.checksum;
    return settings?.type === 'COMPOSITE' ? missingPartChecksumError(settings.algorithm, bare.partNumber) : undefined;
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    const loc = this.layout.object(bucket, key);
    try {
      // MinIO answers 204 to aborting any well-formed uploadId, even a finished one or one of another key;
      // ListParts does check that the upload exists for this key.
      await this.clients.retrying.send(new ListPartsCommand({ ...loc, UploadId: uploadId, MaxParts: 1 }));
      await this.clients.retrying.send(new AbortMultipartUploadCommand({ ...loc, UploadId: uploadId }));
    } catch (err) {
      // A record whose upload the upstream no longer has is stale either way.
      if (faultCode(err) === 'NoSuchUpload') await this.dropRecord(bucket, key, uploadId);
      throw translate(err);
    }
    await this.dropRecord(bucket, key, uploadId);
  }

  async listParts(input: { bucket: string; key: string; uploadId: string; partNumberMarker?: number; limit: number }): Promise<ListPartsResult> {
    const s3 = this.clients.retrying;
    const out = await this.call(() =>
      s3.send(
        new ListPartsCommand({
          ...this.layout.object(input.bucket, input.key),
          UploadId: input.uploadId,
          PartNumberMarker: input.partNumberMarker !== undefined ? String(input.partNumberMarker) : undefined,
          MaxParts: input.limit,
        }),
      ),
    );
    const record = await this.readRecord(input.bucket, input.key, input.uploadId);
    const parts: PartInfo[] = (out.Parts ?? []).map((p) => ({
      partNumber: p.PartNumber ?? 0,
      etag: normalizeEtag(p.ETag ?? ''),
      size: p.Size ?? 0,
      lastModified: p.LastModified ?? new Date(0),
      checksum: checksumOf(p),
    }));
    return {
      upload: {
        key: input.key,
        uploadId: input.uploadId,
        initiated: record ? new Date(record.initiated) : new Date(0),
        meta: record?.meta ?? { headers: {}, userMetadata: {} },
        ...(record?.checksum ? { checksum: record.checksum } : {}),
      },
      parts,
      isTruncated: out.IsTruncated ?? false,
    };
  }

  /** The record of an upload, or undefined when the upload was not started through this backend. */
  private async readRecord(bucket: string, key: string, uploadId: string): Promise<UploadRecord | undefined> {
    try {
      const out = await this.clients.retrying.send(new GetObjectCommand(this.layout.uploadRecord(bucket, key, uploadId)));
      return JSON.parse(await out.Body!.transformToString()) as UploadRecord;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw translate(err);
    }
  }

  private async dropRecord(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.clients.retrying.send(new DeleteObjectCommand(this.layout.uploadRecord(bucket, key, uploadId))).catch(() => {
      // A leftover record shows a finished upload in listings until aborted again; never fail the client for it.
    });
  }
}
