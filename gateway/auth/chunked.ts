/**
 * aws-chunked decoding (`<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n` ... `0...\r\n`, trailers, `\r\n`) with
 * chunk and trailer signature checks. Data is passed through as it arrives and hashed incrementally, so memory per
 * request is one header line, never a chunk.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors.ts';
import { EMPTY_SHA256, sha256Hex, sign, signaturesEqual } from './sigv4.ts';

/** What chains chunk signatures to the seed (header) signature. */
export interface ChunkSigning {
  signingKey: Buffer;
  seedSignature: string;
  amzDate: string;
  scope: string;
}

/** How an aws-chunked body is framed and protected. */
export interface AwsChunkedOptions {
  /** present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk (and the trailer) must be signed */
  signing?: ChunkSigning;
  /** trailer headers follow the final chunk (the -TRAILER payload modes) */
  trailer: boolean;
  /** x-amz-decoded-content-length; decoding fails as soon as the body runs past it */
  decodedLength?: number;
  /** smallest size of a chunk that is not the last data chunk; default 8192 with signing, else none */
  minChunkSize?: number;
}

/** S3's minimum for every signed chunk but the last. */
export const MIN_SIGNED_CHUNK = 8192;
// Chunk header lines are ~90 bytes and trailer lines shorter than 200; the cap only stops a client streaming garbage.
const MAX_LINE = 4096;
const CRLF = Buffer.from('\r\n');
/** Trailer names whose one value the gateway acts on. */
const SINGLE_TRAILER = /^(?:x-amz-trailer-signature|x-amz-checksum-[a-z0-9]+)$/;

/** String to sign for one chunk: chained from the previous signature, over the SHA-256 of the chunk's data. */
export function chunkStringToSign(signing: Omit<ChunkSigning, 'signingKey' | 'seedSignature'>, previousSignature: string, dataSha256Hex: string): string {
  return ['AWS4-HMAC-SHA256-PAYLOAD', signing.amzDate, signing.scope, previousSignature, EMPTY_SHA256, dataSha256Hex].join('\n');
}

/** String to sign for the trailer: chained from the final chunk's signature, over the canonical trailer lines. */
export function trailerStringToSign(signing: Omit<ChunkSigning, 'signingKey' | 'seedSignature'>, previousSignature: string, trailers: Array<[string, string]>): string {
  const canonical = trailers.map(([n, v]) => `${n}:${v}\n`).join('');
  return ['AWS4-HMAC-SHA256-TRAILER', signing.amzDate, signing.scope, previousSignature, sha256Hex(canonical)].join('\n');
}

const malformed = (detail: string) => new S3Error('InvalidRequest', `Malformed aws-chunked body: ${detail}`);

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'final-crlf' | 'done';

/** Push parser for aws-chunked bodies; write() hands decoded bytes to a callback and throws S3Error on bad input. */
export class AwsChunkedParser {
  /** Trailer headers received (lower-case names, trimmed values), without x-amz-trailer-signature. */
  readonly trailers: Array<[string, string]> = [];
  /** Decoded bytes so far. */
  decodedBytes = 0;

  private state: State = 'size';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private chunkSize = 0;
  private lastDataChunkSize = -1;
  private chunkSignature = '';
  private previousSignature: string;
  private hash: Hash | undefined;
  private crlfSeen = 0;
  private chunkCount = 0;
  private trailerSignature: string | undefined;
  private readonly singleTrailers = new Set<string>();
  private readonly minChunkSize: number;

  constructor(private readonly opts: AwsChunkedOptions) {
    this.previousSignature = opts.signing?.seedSignature ?? '';
    this.minChunkSize = opts.minChunkSize ?? (opts.signing ? MIN_SIGNED_CHUNK : 0);
  }

  /** Feeds wire bytes; onData receives views of buf holding decoded object bytes. */
  write(buf: Buffer, onData: (data: Buffer) => void): void {
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case 'data': {
          const n = Math.min(this.remaining, buf.length - pos);
          const slice = buf.subarray(pos, pos + n);
          this.hash?.update(slice);
          onData(slice);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endChunk();
          break;
        }
        case 'data-crlf':
          if (buf[pos] !== CRLF[this.crlfSeen]) throw malformed('chunk data is not followed by CRLF');
          pos++;
          if (++this.crlfSeen === 2) this.state = 'size';
          break;
        case 'done':
          throw malformed('data after the final chunk');
        default: {
          const line = this.takeLine(buf, pos);
          if (!line) return;
          pos = line[1];
          this.onLine(line[0]);
        }
      }
    }
  }

  /** Checks that the body ended where the framing says it may; throws S3Error otherwise. */
  end(): void {
    const complete = this.state === 'done' || (this.pending.length === 0 && (this.state === 'final-crlf' || this.state === 'trailer'));
    if (!complete) throw new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk.');
    if (this.state === 'trailer') this.finishTrailer();
    const declared = this.opts.decodedLength;
    if (declared !== undefined && this.decodedBytes !== declared) {
      throw new S3Error('IncompleteBody', `Decoded ${this.decodedBytes} bytes, x-amz-decoded-content-length says ${declared}.`);
    }
  }

  /** Returns the next CRLF-terminated line (without CRLF) and where it ended, or buffers a partial line. */
  private takeLine(buf: Buffer, pos: number): [string, number] | undefined {
    const p = this.pending;
    if (p.length > 0 && p[p.length - 1] === 0x0d && buf[pos] === 0x0a) {
      this.pending = Buffer.alloc(0);
      return [p.toString('latin1', 0, p.length - 1), pos + 1];
    }
    const i = buf.indexOf(CRLF, pos);
    if (i < 0) {
      this.pending = Buffer.concat([p, buf.subarray(pos)]);
      if (this.pending.length > MAX_LINE) throw malformed('header line too long');
      return undefined;
    }
    if (p.length + (i - pos) > MAX_LINE) throw malformed('header line too long');
    const line = p.length > 0 ? Buffer.concat([p, buf.subarray(pos, i)]).toString('latin1') : buf.toString('latin1', pos, i);
    this.pending = Buffer.alloc(0);
    return [line, i + 2];
  }

  private onLine(line: string): void {
    if (this.state === 'size') return this.startChunk(line);
    if (this.state === 'final-crlf') {
      if (line !== '') throw malformed('trailer headers sent but none were announced');
      this.state = 'done';
      return;
    }
    // Trailer section: the S3 user guide allows "<value>\n" before the CRLF, hence trim().
    if (line.trim() === '') {
      this.finishTrailer();
      this.state = 'done';
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('bad trailer line');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // A trailer the gateway acts on (the signature, a checksum) sent twice would be verified on one copy while the
    // other was signed too: refused as a repeated x-amz-checksum-* header is (sigv4.ts SINGLE_VALUED).
    if (SINGLE_TRAILER.test(name)) {
      if (this.singleTrailers.has(name)) throw new S3Error('InvalidArgument', `The ${name} trailer must not be given more than once.`, { fields: { ArgumentName: name } });
      this.singleTrailers.add(name);
    }
    if (name === 'x-amz-trailer-signature') this.trailerSignature = value;
    else this.trailers.push([name, value]);
  }

  private startChunk(line: string): void {
    const semi = line.indexOf(';');
    const sizeHex = semi < 0 ? line : line.slice(0, semi);
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeHex)) throw new S3Error('InvalidChunkSizeError', 'Invalid chunk size.');
    const size = parseInt(sizeHex, 16);
    if (size > 0 && this.lastDataChunkSize >= 0 && this.lastDataChunkSize < this.minChunkSize) {
      throw new S3Error('InvalidChunkSizeError', undefined, {
        fields: { Chunk: String(this.chunkCount), BadChunkSize: String(this.lastDataChunkSize) },
      });
    }
    const declared = this.opts.decodedLength;
    if (declared !== undefined && this.decodedBytes + size > declared) {
      throw new S3Error('IncompleteBody', 'The aws-chunked body is longer than x-amz-decoded-content-length.');
    }
    if (this.opts.signing) {
      const match = /(?:^|;)chunk-signature=([^;]*)/.exec(semi < 0 ? '' : line.slice(semi));
      if (!match) throw new S3Error('SignatureDoesNotMatch', 'A chunk has no chunk-signature.');
      this.chunkSignature = match[1].trim();
      this.hash = createHash('sha256');
    }
    this.chunkSize = size;
    this.remaining = size;
    if (size > 0) {
      this.state = 'data';
      this.lastDataChunkSize = size;
    } else this.endChunk();
  }

  private endChunk(): void {
    this.chunkCount++;
    this.decodedBytes += this.chunkSize;
    const signing = this.opts.signing;
    if (signing) {
      const toSign = chunkStringToSign(signing, this.previousSignature, this.hash!.digest('hex'));
      const expected = sign(signing.signingKey, toSign);
      if (!signaturesEqual(expected, this.chunkSignature)) {
        throw new S3Error('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.');
      }
      this.previousSignature = expected;
    }
    if (this.chunkSize > 0) {
      this.state = 'data-crlf';
      this.crlfSeen = 0;
    } else this.state = this.opts.trailer ? 'trailer' : 'final-crlf';
  }

  private finishTrailer(): void {
    const signing = this.opts.signing;
    if (!signing || !this.opts.trailer) return;
    if (this.trailerSignature === undefined) throw new S3Error('SignatureDoesNotMatch', 'The trailer has no x-amz-trailer-signature.');
    const expected = sign(signing.signingKey, trailerStringToSign(signing, this.previousSignature, this.trailers));
    if (!signaturesEqual(expected, this.trailerSignature)) {
      throw new S3Error('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the signature you provided.');
    }
  }
}

/** aws-chunked decoding as a Transform: raw body in, object bytes out; errors before end on any bad framing or signature. */
export class AwsChunkedDecoder extends Transform {
  /** The parser, for trailers and decoded length once the stream has finished. */
  readonly parser: AwsChunkedParser;

  constructor(opts: AwsChunkedOptions) {
    super();
    this.parser = new AwsChunkedParser(opts);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.parser.write(chunk, (data) => this.push(data));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.parser.end();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}
