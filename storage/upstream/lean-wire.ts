/**
 * What the lean client's callers need beyond wire.ts: a header's single value, the trailing checksum of a streamed
 * upload, and the check of a downloaded body against the checksum the upstream answered with.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { BodyInput, StoredChecksum } from '../backend.ts';
import { createHasher, type Hasher } from '../checksums.ts';
import { BadDigestError } from '../errors.ts';
import type { LeanBody } from './lean.ts';

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
