/**
 * S3's additional checksums as storage computes them: incremental hashers for the five algorithms, the composite
 * checksum of a multipart object (the checksum of its parts' concatenated digests, `<base64>-<N>`), and the
 * full-object CRC of a multipart object combined from its parts' CRCs without reading a byte (S3 User Guide,
 * "Checking object integrity": full object and composite checksums).
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import type { ChecksumAlgorithm, ChecksumType } from './backend.ts';

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

/** Computes the base64 checksum of a whole buffer. */
export async function computeChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  const h = createHasher(algorithm);
  h.update(data);
  return (await h.digest()).toString('base64');
}

/**
 * Which checksum types S3 allows for each algorithm, the default first (S3 API reference, CreateMultipartUpload
 * x-amz-checksum-type): CRC64NVME is full-object only, the SHAs composite only, CRC32/CRC32C either.
 */
export const CHECKSUM_TYPES: Record<ChecksumAlgorithm, readonly ChecksumType[]> = {
  CRC32: ['COMPOSITE', 'FULL_OBJECT'],
  CRC32C: ['COMPOSITE', 'FULL_OBJECT'],
  CRC64NVME: ['FULL_OBJECT'],
  SHA1: ['COMPOSITE'],
  SHA256: ['COMPOSITE'],
};

/**
 * The composite checksum of parts with these base64 digests: `<base64 of the checksum of the digests>-<N>`.
 * Synchronous (so a store can compute it inside its commit); undefined for CRC64NVME, which is never composite.
 */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partDigests: readonly string[]): string | undefined {
  const all = Buffer.concat(partDigests.map((d) => Buffer.from(d, 'base64')));
  let digest: Buffer;
  if (algorithm === 'CRC32') digest = uint32Be(crc32(all));
  else if (algorithm === 'CRC32C') digest = uint32Be(crc32c(all));
  else if (algorithm === 'SHA1' || algorithm === 'SHA256') digest = createHash(algorithm.toLowerCase()).update(all).digest();
  else return undefined;
  return `${digest.toString('base64')}-${partDigests.length}`;
}

/** Reflected polynomial and width of each CRC that S3 can combine into a full-object checksum. */
const CRC_PARAMS: Partial<Record<ChecksumAlgorithm, { poly: bigint; width: bigint }>> = {
  CRC32: { poly: 0xedb88320n, width: 32n },
  CRC32C: { poly: 0x82f63b78n, width: 32n },
  CRC64NVME: { poly: 0x9a6c9329ac4bc9b5n, width: 64n },
};

/** a·b modulo the CRC polynomial, in the reflected bit order zlib's crc32_combine uses. */
function multModP(a: bigint, b: bigint, poly: bigint, width: bigint): bigint {
  let m = 1n << (width - 1n);
  let p = 0n;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ poly : b >> 1n;
  }
  return p;
}

/** x^(8·bytes) modulo the polynomial: the operator that shifts a CRC past `bytes` zero bytes. */
function shiftOperator(bytes: number, poly: bigint, width: bigint): bigint {
  let p = 1n << (width - 1n);
  let power = 1n << (width - 2n); // x^1
  let n = BigInt(bytes) * 8n;
  while (n > 0n) {
    if (n & 1n) p = multModP(power, p, poly, width);
    power = multModP(power, power, poly, width);
    n >>= 1n;
  }
  return p;
}

/**
 * The CRC of the concatenation of parts from each part's CRC and size (zlib's crc32_combine, generalised to the
 * 64-bit CRC); undefined for algorithms that cannot be combined (the SHAs).
 */
export function combineCrcs(algorithm: ChecksumAlgorithm, parts: ReadonlyArray<{ value: string; size: number }>): string | undefined {
  const params = CRC_PARAMS[algorithm];
  if (!params) return undefined;
  const bytes = Number(params.width / 8n);
  let crc = 0n;
  for (const part of parts) {
    const next = BigInt('0x' + (Buffer.from(part.value, 'base64').toString('hex') || '0'));
    crc = multModP(shiftOperator(part.size, params.poly, params.width), crc, params.poly, params.width) ^ next;
  }
  return Buffer.from(crc.toString(16).padStart(bytes * 2, '0'), 'hex').toString('base64');
}
