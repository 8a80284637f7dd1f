/**
 * Payload verification for request bodies: one Transform that decodes aws-chunked, checks chunk and trailer
 * signatures, x-amz-content-sha256, x-amz-checksum-* (header or trailer) and the decoded length, and fails before
 * its end so a consumer never commits a body that did not verify.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors.ts';
import { AwsChunkedParser } from './chunked.ts';
import {
  assertChecksumValue, checksumHeaderAlgorithm, checksumHeaderName, createHasher, parseChecksumAlgorithm,
  type Checksum, type ChecksumAlgorithm, type Hasher,
} from './checksums.ts';
import { parsePayloadHash, type PayloadMode, type VerifiedAuth } from './sigv4.ts';

/** What planBody needs: the verified auth (undefined when anonymous) and Node's lower-cased headers. */
export interface BodyVerifierOptions {
  auth: VerifiedAuth | undefined;
  headers: Record<string, string | string[] | undefined>;
  /**
   * Called once, as the body streams, when it fails a check its signature or signed headers cover (chunk and trailer
   * signatures, aws-chunked framing and chunk sizes, x-amz-content-sha256, the decoded length, the trailer section):
   * the caller writes the request's denial line, as a header-stage signature failure does. A checksum that does not
   * match (BadDigest) is the body's integrity, as a Content-MD5 mismatch is, not a refusal, and is not reported.
   */
  onRefused?: (err: S3Error) => void;
}

/** Result telling the gateway the decoded length and which checksum (if any) was verified so storage can keep it. */
export interface BodyPlan {
  /** decoded content length if known (x-amz-decoded-content-length for aws-chunked, else content-length) */
  decodedLength?: number;
  /** raw request body in, object bytes out; errors with an S3Error in flush, before the end (made on first use) */
  readonly stream: Transform;
  /** after the stream finished: the verified checksum, or the one computed for x-amz-sdk-checksum-algorithm alone */
  checksum(): Checksum | undefined;
}

/** Where the expected checksum comes from. */
type ChecksumSource = { algorithm: ChecksumAlgorithm } & ({ from: 'header'; value: string } | { from: 'trailer' } | { from: 'none' });

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.trim();
const invalid = (message: string) => new S3Error('InvalidRequest', message);

/** Payload mode of an anonymous request: what its x-amz-content-sha256 announces, unsigned otherwise. */
function anonymousPayload(value: string | undefined): PayloadMode {
  const mode = value === undefined ? undefined : parsePayloadHash(value);
  if (mode?.mode === 'streaming-signed') throw invalid('Signed aws-chunked payloads require an Authorization header.');
  return mode ?? { mode: 'unsigned' };
}

/** The names checksumHeaderAlgorithm may recognize (it trims and lower-cases them first; `u` folds case as Unicode does). */
const CHECKSUM_HEADER = /^\s*x-amz-checksum-/iu;

function planChecksum(headers: BodyVerifierOptions['headers'], trailerMode: boolean): ChecksumSource | undefined {
  const inHeaders: Array<{ algorithm: ChecksumAlgorithm; value: string }> = [];
  for (const name in headers) {
    // Most names are not checksum headers: told so by a test that builds no lower-cased copy of each.
    if (!CHECKSUM_HEADER.test(name)) continue;
    const algorithm = checksumHeaderAlgorithm(name);
    const value = first(headers[name]);
    if (algorithm && value !== undefined) inHeaders.push({ algorithm, value });
  }
  const trailer = first(headers['x-amz-trailer']);
  const trailerNames = trailer ? trailer.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) : [];
  if (trailerNames.length > 0 && !trailerMode) {
    throw invalid('x-amz-trailer requires a STREAMING-*-TRAILER x-amz-content-sha256 and aws-chunked body.');
  }
  const inTrailer = trailerNames.map((n) => {
    const algorithm = checksumHeaderAlgorithm(n);
    if (!algorithm) throw invalid('The value specified in the x-amz-trailer header is not supported');
    return algorithm;
  });
  if (inHeaders.length + inTrailer.length > 1) {
    throw invalid('Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  }
  const sdkName = first(headers['x-amz-sdk-checksum-algorithm']);
  const sdk = sdkName === undefined ? undefined : parseChecksumAlgorithm(sdkName);
  if (sdkName !== undefined && !sdk) throw invalid('Value for x-amz-sdk-checksum-algorithm header is invalid.');
  const declared = inHeaders[0]?.algorithm ?? inTrailer[0];
  if (sdk && declared && sdk !== declared) throw invalid('Value for x-amz-sdk-checksum-algorithm header is invalid.');
  if (inHeaders[0]) {
    assertChecksumValue(inHeaders[0].algorithm, inHeaders[0].value);
    return { algorithm: inHeaders[0].algorithm, value: inHeaders[0].value, from: 'header' };
  }
  if (inTrailer[0]) return { algorithm: inTrailer[0], from: 'trailer' };
  // S3 computes and stores the checksum when the client names the algorithm without sending a value.
  return sdk ? { algorithm: sdk, from: 'none' } : undefined;
}

function parseLength(value: string | undefined, required: boolean): number | undefined {
  if (value !== undefined && /^\d{1,15}$/.test(value)) return Number(value);
  if (required) throw new S3Error('MissingContentLength', 'aws-chunked bodies need a valid x-amz-decoded-content-length header.');
  return undefined;
}

/** Throws S3Error up front for impossible combinations, else returns the verifying Transform and what it will know. */
export function planBody(opts: BodyVerifierOptions): BodyPlan {
  const { auth, headers, onRefused } = opts;
  const payload = auth?.payload ?? anonymousPayload(first(headers['x-amz-content-sha256']));
  const chunked = payload.mode === 'streaming-signed' || payload.mode === 'streaming-unsigned-trailer';
  const trailer = payload.mode === 'streaming-unsigned-trailer' || (payload.mode === 'streaming-signed' && payload.trailer);
  const source = planChecksum(headers, trailer);
  const decodedLength = parseLength(first(headers[chunked ? 'x-amz-decoded-content-length' : 'content-length']), chunked);
  const parser = chunked
    ? new AwsChunkedParser({
      trailer,
      decodedLength,
      signing: payload.mode === 'streaming-signed' && auth
        ? { signingKey: auth.signingKey, seedSignature: auth.signature, amzDate: auth.amzDate, scope: auth.scope }
        : undefined,
    })
    : undefined;
  // Every refusal above happens now, before the operation runs; the verifying Transform is built only when the body
  // is read, which most requests (GET, HEAD) never do.
  return new LazyBodyPlan(decodedLength, {
    parser,
    source,
    sha256Hex: payload.mode === 'signed' ? payload.sha256Hex : undefined,
    length: chunked ? undefined : decodedLength,
    onRefused,
  });
}

/**
 * A BodyPlan whose verifier is made on first use. A class, not an object literal with a getter: V8 defines a literal's
 * accessor through the runtime on every request.
 */
class LazyBodyPlan implements BodyPlan {
  private made: BodyVerifier | undefined;

  constructor(readonly decodedLength: number | undefined, private readonly parts: VerifierParts) {}

  get stream(): Transform {
    return (this.made ??= new BodyVerifier(this.parts));
  }

  checksum(): Checksum | undefined {
    return this.made?.verified;
  }
}

interface VerifierParts {
  parser?: AwsChunkedParser;
  source?: ChecksumSource;
  sha256Hex?: string;
  /** content-length to hold a plain body to */
  length?: number;
  onRefused?: (err: S3Error) => void;
}

/** The Transform planBody returns; data passes through as it arrives, every check runs in flush. */
class BodyVerifier extends Transform {
  verified: Checksum | undefined;
  private readonly sha256: Hash | undefined;
  private readonly checksum: Hasher | undefined;
  private bytes = 0;
  private reported = false;
  private readonly onData = (data: Buffer) => {
    this.checksum?.update(data);
    this.push(data);
  };

  constructor(private readonly parts: VerifierParts) {
    super();
    this.sha256 = parts.sha256Hex !== undefined ? createHash('sha256') : undefined;
    this.checksum = parts.source ? createHasher(parts.source.algorithm) : undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (this.parts.parser) this.parts.parser.write(chunk, this.onData);
      else {
        this.bytes += chunk.length;
        this.sha256?.update(chunk);
        this.onData(chunk);
      }
      cb();
    } catch (err) {
      cb(this.refused(err as Error));
    }
  }

  override _flush(cb: TransformCallback): void {
    let signed = true;
    try {
      this.verifySigned();
    } catch (err) {
      signed = false;
      cb(this.refused(err as Error));
    }
    if (signed) this.verifyChecksum().then(() => cb(), (err: Error) => cb(err));
  }

  /** Reports a refusal of what the signature covers to onRefused, once per request; returns the error to fail with. */
  private refused(err: Error): Error {
    if (err instanceof S3Error && !this.reported) {
      this.reported = true;
      this.parts.onRefused?.(err);
    }
    return err;
  }

  /** The checks of what the signature covers: framing, the decoded length, x-amz-content-sha256, the trailer section. */
  private verifySigned(): void {
    const { parser, sha256Hex, length } = this.parts;
    parser?.end();
    if (length !== undefined && this.bytes !== length) throw new S3Error('IncompleteBody');
    if (this.sha256 && sha256Hex !== undefined) {
      const computed = this.sha256.digest('hex');
      if (computed !== sha256Hex) {
        throw new S3Error('XAmzContentSHA256Mismatch', undefined, {
          fields: { ClientComputedContentSHA256: sha256Hex, S3ComputedContentSHA256: computed },
        });
      }
    }
    if (parser) this.checkTrailers(parser);
  }

  private async verifyChecksum(): Promise<void> {
    const { parser, source } = this.parts;
    if (!source || !this.checksum) return;
    const value = (await this.checksum.digest()).toString('base64');
    let expected: string | undefined;
    if (source.from === 'header') expected = source.value;
    else if (source.from === 'trailer') {
      expected = parser!.trailers.find(([n]) => n === checksumHeaderName(source.algorithm))![1];
      assertChecksumValue(source.algorithm, expected);
    }
    if (expected !== undefined && expected !== value) {
      throw new S3Error('BadDigest', `The ${source.algorithm} you specified did not match the calculated checksum.`);
    }
    this.verified = { algorithm: source.algorithm, value };
  }

  /**
   * The trailer section holds what x-amz-trailer announced, sent: a checksum trailer nobody announced cannot have been
   * hashed, and refusing beats storing an unchecked body silently.
   */
  private checkTrailers(parser: AwsChunkedParser): void {
    const announced = this.parts.source?.from === 'trailer' ? checksumHeaderName(this.parts.source.algorithm) : undefined;
    const stray = parser.trailers.find(([n]) => checksumHeaderAlgorithm(n) && n !== announced);
    if (stray) throw invalid(`Trailer ${stray[0]} was not announced in x-amz-trailer.`);
    if (announced !== undefined && !parser.trailers.some(([n]) => n === announced)) {
      throw new S3Error('IncompleteBody', `The trailing ${announced} announced in x-amz-trailer was not sent.`);
    }
  }
}

/** Content-Encoding to store for an object: the client's value without the aws-chunked transfer framing. */
export function storedContentEncoding(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const rest = value.split(',').map((s) => s.trim()).filter((s) => s && s.toLowerCase() !== 'aws-chunked');
  return rest.length > 0 ? rest.join(',') : undefined;
}
