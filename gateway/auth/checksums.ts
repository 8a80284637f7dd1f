/**
 * Checksums S3 clients attach to uploads (x-amz-checksum-* headers and trailers): incremental hashers and header
 * validation. Values travel as base64 of the big-endian digest, the way S3 prints them.
 */
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

// The hashers live in storage/, which also needs them (composite and combined multipart checksums).
export { computeChecksum, crc32c, createHasher, type Hasher } from '../../storage/checksums.ts';

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
