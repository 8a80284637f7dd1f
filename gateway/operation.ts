/**
 * What an S3 operation sees and returns. Operations are small functions from an OpContext to an OpResult; the
 * responder writes the result (XML string, buffer or stream) and the error middleware renders what they throw.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Family, Principal } from '../policy/types.ts';
import type { Backend, StoredChecksum } from '../storage/backend.ts';
import type { GatewayConfig } from './config.ts';
import type { PostForm } from './post-policy.ts';
import type { HeaderMap } from './s3-headers.ts';
import { xmlDocument } from './xml.ts';

/** What an operation answers: status (200 by default), headers and an optional body. */
export interface OpResult {
  status?: number;
  headers?: HeaderMap;
  body?: string | Buffer | Readable;
}

/** The per-request authorizer operations consult for decisions that depend on data (per key, per listing). */
export interface Access {
  /**
   * Rejects with AccessDenied (after writing a denial line) unless the caller may use `family` on bucket/key (with
   * wholeBucket, on the bucket as a whole: its configuration). With expectedOwner (the request's
   * x-amz-expected-bucket-owner or x-amz-source-expected-bucket-owner), also AccessDenied unless the bucket's owner
   * id (its tenant, as ListBuckets reports Owner/ID) is exactly that value (S3 User Guide, "Verifying bucket ownership").
   */
  require(family: Family, bucket: string, key?: string, opts?: { copySource?: string; wholeBucket?: boolean; expectedOwner?: string }): Promise<void>;
  /** The same decision without throwing, for per-key results (DeleteObjects); a denial line is written. */
  allows(family: Family, bucket: string, key: string): Promise<boolean>;
  /** Which listing entries the caller may see under `prefix`; rejects with AccessDenied when it may see none. */
  listing(bucket: string, prefix: string): Promise<ListingFilter>;
  /** Buckets the caller may learn the names of. */
  visibleBuckets(names: string[]): Promise<string[]>;
  /** Records a new bucket as the caller's tenant's (CreateBucket) or forgets it (DeleteBucket). */
  bucketCreated(bucket: string): Promise<void>;
  bucketDeleted(bucket: string): Promise<void>;
  /** Whether the bucket already belongs to the caller's tenant (BucketAlreadyOwnedByYou vs BucketAlreadyExists). */
  ownsBucket(bucket: string): Promise<boolean>;
  /**
   * A write's last check (storage's `beforeCommit`, storage/backend.ts CommitCheck), or undefined for root: rejects
   * with AccessDenied (after a denial line, layer `tenant`) when the bucket belongs to another tenant by then, with
   * NoSuchBucket when it belongs to none (deleted). The request was authorized against the owner of the name when it
   * started; a bucket deleted and created again for another tenant since (or moved to one) is not that bucket.
   */
  ownerCheck(bucket: string, key?: string): (() => Promise<void>) | undefined;
  /**
   * Writes the denial line (layer signature, reason `Code: message`) of a body refused as it streamed: a chunk or
   * trailer signature, x-amz-content-sha256 or the decoded length did not verify (auth/body-verifier.ts onRefused).
   */
  bodyRefused(err: { code: string; message: string }, bucket: string, key?: string): void;
}

/** Decides visibility of listing entries; a seek hint lets the listing skip a subtree that is wholly hidden. */
export interface ListingFilter {
  keyVisible(key: string): boolean;
  /**
   * Whether a rolled-up common prefix may be shown. `probe` lists one key under a narrower prefix, so a prefix is
   * shown only when something visible actually lies beneath it.
   */
  prefixVisible(prefix: string, probe: (narrower: string) => Promise<boolean>): Promise<boolean>;
  /** A key after which listing may resume when `key` starts a hidden subtree, or undefined. */
  skipPast(key: string): string | undefined;
  /**
   * A second, batched decision (relationships in a governed bucket): of the keys of one fetched page that passed
   * keyVisible, those the caller may read. Absent when keyVisible settles everything.
   */
  readable?(keys: string[]): Promise<ReadonlySet<string>>;
}

/** Services shared by every request, built once by the composition root. */
export interface Services {
  backend: Backend;
  config: GatewayConfig;
}

/** Everything an operation may use for one request. */
export interface OpContext {
  requestId: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  services: Services;
  principal: Principal;
  access: Access;
  /** The decoded, verified request body; errors with an S3Error if verification fails at any point. */
  body(): Readable;
  /** Decoded body length when the client declared one. */
  bodyLength: number | undefined;
  /** The checksum the body verifier confirmed, once body() has been fully consumed. */
  bodyChecksum(): StoredChecksum | undefined;
  /**
   * Reads a small body (XML documents) whole as UTF-8 text, refusing more than `limit` bytes and bytes that are not
   * UTF-8 (both MalformedXML). The text is exactly the bytes received: encoded again, it gives them back.
   */
  readText(limit?: number): Promise<string>;
  /** The verified browser form of a PostObject request (its file still streaming). */
  form?: PostForm;
}

/** An S3 operation. */
export type Operation = (op: OpContext) => Promise<OpResult>;

/** An XML response with S3's content type. */
export function xmlResult(root: string, content: Record<string, unknown>, status = 200): OpResult {
  return { status, headers: { 'content-type': 'application/xml' }, body: xmlDocument(root, content) };
}
