/**
 * Checksums S3 clients attach to uploads (x-amz-checksum-* headers and trailers): incremental hashers and header
 * validation. Values travel as base64 of the big-endian digest, the way S3 prints them.
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { S3Error } from '../errors.ts';

/** Checksum algorithms S3 accepts in x-amz-checksum-* headers and trailers. */
export const CHECKSUM_ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const;

/** One of the S3 checksum algorithms. */
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** A checksum as S3 reports it: algorithm and base64 value. */
export interface Checksum {
  algorithm: ChecksumAlgorithm;
  value: string;
}

/** Digest length in bytes of each algorithm, used to reject malformed header values before reading the body. */
const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };

/** An incremental hasher; digest() may be called once. */
export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Promise<Buffer>;
}

// Slicing-by-8 CRC-32C over one flat table: @aws-crypto/crc32c walks the data byte by byte through an iterator,
// about 10x slower, and this runs over every byte of an upload that asks for CRC32C.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let s = 1; s < 8; s++) {
    for (let n = 0; n < 256; n++) t[s * 256 + n] = (t[(s - 1) * 256 + n] >>> 8) ^ t[t[(s - 1) * 256 + n] & 0xff];
  }
  return t;
})();

/** Continues a CRC-32C (Castagnoli) over data; start with 0. */
export function crc32c(data: Uint8Array, previous = 0): number {
  const T = CRC32C_TABLE;
  let crc = ~previous;
  let i = 0;
  const end8 = data.length - (data.length & 7);
  for (; i < end8; i += 8) {
    crc ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    crc = T[1792 + (crc & 0xff)] ^ T[1536 + ((crc >>> 8) & 0xff)] ^ T[1280 + ((crc >>> 16) & 0xff)] ^ T[1024 + (crc >>> 24)] ^
      T[768 + data[i + 4]] ^ T[512 + data[i + 5]] ^ T[256 + data[i + 6]] ^ T[data[i + 7]];
  }
  for (; i < data.length; i++) crc = (crc >>> 8) ^ T[(crc ^ data[i]) & 0xff];
  return ~crc >>> 0;
}

function uint32Be(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

class CrcHasher implements Hasher {
  private value = 0;
  constructor(private readonly fn: (data: Uint8Array, previous: number) => number) {}
  update(data: Uint8Array): void {
    this.value = this.fn(data, this.value);
  }
  async digest(): Promise<Buffer> {
    return uint32Be(this.value);
  }
}

class NodeHasher implements Hasher {
  private readonly hash: Hash;
  constructor(name: string) {
    this.hash = createHash(name);
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Buffer> {
    return this.hash.digest();
  }
}

class Crc64Hasher implements Hasher {
  private readonly impl = new Crc64Nvme();
  update(data: Uint8Array): void {
    this.impl.update(data);
  }
  async digest(): Promise<Buffer> {
    return Buffer.from(await this.impl.digest());
  }
}

/** Creates an incremental hasher for a checksum algorithm, or for MD5 (which storage uses for ETags). */
export function createHasher(algorithm: ChecksumAlgorithm | 'MD5'): Hasher {
  switch (algorithm) {
    case 'CRC32':
      return new CrcHasher((d, p) => crc32(d, p));
    case 'CRC32C':
      return new CrcHasher(crc32c);
    case 'CRC64NVME':
      return new Crc64Hasher();
    case 'SHA1':
      return new NodeHasher('sha1');
    case 'SHA256':
      return new NodeHasher('sha256');
    case 'MD5':
      return new NodeHasher('md5');
  }
}

/** Computes the base64 checksum of a whole buffer (tests, small bodies). */
export async function computeChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  const h = createHasher(algorithm);
  h.update(data);
  return (await h.digest()).toString('base64');
}

/** Maps an algorithm name as clients spell it ('crc32c', 'CRC32C') to the canonical name, or undefined if unknown. */
export function parseChecksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const upper = name.trim().toUpperCase();
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(upper) ? (upper as ChecksumAlgorithm) : undefined;
}

/** Maps a header or trailer name ('x-amz-checksum-crc32') to its algorithm, or undefined if it is not one. */
export function checksumHeaderAlgorithm(headerName: string): ChecksumAlgorithm | undefined {
  const lower = headerName.trim().toLowerCase();
  return lower.startsWith('x-amz-checksum-') ? parseChecksumAlgorithm(lower.slice('x-amz-checksum-'.length)) : undefined;
}

/** The header name that carries an algorithm's checksum. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** True when value is canonical base64 of exactly the algorithm's digest length. */
export function isValidChecksumValue(algorithm: ChecksumAlgorithm, value: string): boolean {
  const bytes = DIGEST_BYTES[algorithm];
  if (value.length !== Math.ceil(bytes / 3) * 4) return false;
  const decoded = Buffer.from(value, 'base64');
  // Round-tripping rejects stray characters Buffer.from would silently skip.
  return decoded.length === bytes && decoded.toString('base64') === value;
}

/** Throws InvalidRequest unless value is a well-formed checksum for the algorithm. */
export function assertChecksumValue(algorithm: ChecksumAlgorithm, value: string): void {
  if (!isValidChecksumValue(algorithm, value)) {
    throw new S3Error('InvalidRequest', `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
  }
}
