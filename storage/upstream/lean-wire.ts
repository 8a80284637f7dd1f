/**
 * What the lean client's callers need beyond wire.ts: a header's single value, the trailing checksum of a streamed
 * upload, the check of a downloaded body against the checksum the upstream answered with, and small bodies read
 * whole before the answer goes out.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { BodyInput, ObjectMeta, ObjectRead, StoredChecksum } from '../backend.ts';
import { createHasher, type Hasher } from '../checksums.ts';
import { BadDigestError, ServiceUnavailableError, StorageError } from '../errors.ts';
import { translate } from './errors.ts';
import type { LeanBody } from './lean.ts';

/**
 * Largest GetObject body read whole before the gateway answers (one socket read's worth). Held per request only
 * until it is written, so 32 connections hold at most 2 MiB; anything longer streams.
 */
export const SMALL_BODY = 64 * 1024;

/** One header's value (repeated headers joined as HTTP joins them). */
export function headerValue(v: IncomingHttpHeaders[string]): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The trailer carrying a checksum the client announced but sends only after its body (aws-chunked trailer): the
 * gateway verifies it as the body streams, and its value goes up as the upstream request's own trailer, so the
 * upstream stores and re-checks it without JavaScript hashing the body a second time. Undefined when the checksum
 * travels as a header (known up front) or there is none.
 */
export function trailerOf(input: Pick<BodyInput, 'announcedChecksum' | 'finalChecksum'>, known?: StoredChecksum): LeanBody['trailer'] {
  if ((known && (!known.type || known.type === 'FULL_OBJECT')) || !input.announcedChecksum) return undefined;
  const algorithm = input.announcedChecksum;
  return {
    name: `x-amz-checksum-${algorithm.toLowerCase()}`,
    value: () => {
      const sum = input.finalChecksum?.();
      return sum?.algorithm === algorithm ? sum.value : undefined;
    },
  };
}

/**
 * Passes a body through while computing its checksum, holding the latest chunk back until the end: a mismatch fails
 * the stream with BadDigestError before its last bytes, so a reader can never take a corrupt body for a whole one.
 */
class Verifier extends Transform {
  private readonly hasher: Hasher;
  private held: Buffer | undefined;

  constructor(private readonly expected: StoredChecksum) {
    super();
    this.hasher = createHasher(expected.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hasher.update(chunk);
    const previous = this.held;
    this.held = chunk;
    done(null, previous);
  }

  override _flush(done: TransformCallback): void {
    this.hasher.digest().then((digest) => {
      const got = digest.toString('base64');
      if (got !== this.expected.value) return done(new BadDigestError(`upstream body's ${this.expected.algorithm} ${got} is not the stored ${this.expected.value}`));
      done(null, this.held);
    }, done);
  }
}

/**
 * The upstream's body, checked against its full-object checksum as it streams (what the SDK did for GetObject with
 * ChecksumMode: ENABLED, here with the storage's native hashers). Destroying the result destroys the upstream body.
 */
export function verifiedBody(body: Readable, checksum: StoredChecksum): Readable {
  // pipe() and two listeners rather than stream.pipeline(), whose AbortController per call showed in the profile.
  const verifier = new Verifier(checksum);
  body.on('error', (err) => verifier.destroy(err));
  verifier.on('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return body.pipe(verifier);
}

/**
 * Reads an upstream body of `length` (≤ SMALL_BODY) bytes whole, checked against its full-object checksum when one
 * is given. The gateway then answers with head and body in one write, without a stream pipeline per request (Koa's
 * stream.pipeline with its AbortController, the verifier, their listeners: most of what a small upstream GET cost
 * beyond the two sockets), and a short, cut or corrupt body becomes an error answer instead of a truncated 200.
 * Throws ServiceUnavailableError (translated) when the body is cut short, StorageError when it does not match.
 */
export async function smallBody(body: IncomingMessage, length: number, checksum?: StoredChecksum): Promise<Buffer> {
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: unknown) => {
      body.destroy();
      reject(translate(err));
    };
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > length) return fail(new ServiceUnavailableError(`upstream body is longer than its ${length} bytes`));
      chunks.push(chunk);
    });
    const short = () => fail(new ServiceUnavailableError(`upstream body ended after ${size} of ${length} bytes`));
    body.once('error', fail);
    body.once('end', () => {
      if (size !== length) return short();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    // Cut off (reset, idle timeout) without an 'error' of its own.
    body.once('close', () => {
      if (!body.readableEnded) short();
    });
  });
  if (checksum) {
    const hasher = createHasher(checksum.algorithm);
    hasher.update(bytes);
    const got = (await hasher.digest()).toString('base64');
    // The upstream's data, not the client's request, is wrong: InternalError, logged, never BadDigest (a 400).
    if (got !== checksum.value) throw new StorageError(`upstream body's ${checksum.algorithm} ${got} is not the stored ${checksum.value}`);
  }
  return bytes;
}

/**
 * A read served from bytes in memory: `bytes` to send as they are, `body` streaming them only if asked for. A class
 * with the getter on its prototype: an object literal spreading the read and adding a getter cost a small upstream
 * GET about 1% of its CPU in the profile (made per request, it never got a stable shape).
 */
class BytesRead implements ObjectRead {
  readonly meta: ObjectMeta;
  readonly range: ObjectRead['range'];
  private stream: Readable | undefined;

  constructor(
    read: Pick<ObjectRead, 'meta' | 'range'>,
    readonly bytes: Buffer,
  ) {
    this.meta = read.meta;
    this.range = read.range;
  }

  get body(): Readable {
    return (this.stream ??= Readable.from([this.bytes], { objectMode: false }));
  }
}

/** A read served from bytes in memory (see BytesRead). */
export function bytesRead(read: Pick<ObjectRead, 'meta' | 'range'>, bytes: Buffer): ObjectRead & { bytes: Buffer } {
  return new BytesRead(read, bytes);
}
