/**
 * aws-chunked decoding and body verification: the shared streaming vectors fed whole, byte by byte and in random
 * splits; tampering, truncation, chunk-size rules, x-amz-content-sha256 and x-amz-checksum-* handling.
 */
import test from 'ava';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { planBody, storedContentEncoding } from '../gateway/auth/body-verifier.ts';
import { AwsChunkedDecoder, chunkStringToSign, trailerStringToSign, type ChunkSigning } from '../gateway/auth/chunked.ts';
import { computeChecksum } from '../gateway/auth/checksums.ts';
import { verifySigV4, sha256Hex, type VerifiedAuth } from '../gateway/auth/sigv4.ts';
import { S3Error } from '../gateway/errors.ts';

// The shared test data sits beside the repository (../shared), wherever it is cloned.
const DIR = fileURLToPath(new URL('../../shared/testdata/sigv4', import.meta.url));

interface ChunkVector {
  name: string;
  credentials: { access_key_id: string; secret_access_key: string; region: string; service: string; timestamp: string };
  request: { body: { data: string } };
  signed_request: { method: string; path: string; query: string; headers: Array<[string, string]>; body: { data: string } };
  expected: {
    seed_signature: string | null;
    chunks: Array<{ length: number; data_sha256?: string; string_to_sign?: string; signature: string | null }>;
    trailer: null | { headers: Array<[string, string]>; string_to_sign: string | null; signature: string | null };
  };
  tamper_expectations: { body: string };
}

const load = (f: string): ChunkVector => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const VECTORS = [
  load('s3-api-reference/put-object-streaming-signed-chunks.json'),
  load('s3-api-reference/put-object-streaming-signed-chunks-trailer.json'),
  load('third-party/awsig/put-object-streaming-unsigned-trailer.json'),
];

/** Node's req.headers: lower-case names, repeated values joined. */
function nodeHeaders(pairs: Array<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [n, v] of pairs) out[n.toLowerCase()] = out[n.toLowerCase()] ? `${out[n.toLowerCase()]}, ${v.trim()}` : v.trim();
  return out;
}

async function authOf(v: ChunkVector): Promise<VerifiedAuth> {
  const sr = v.signed_request;
  const auth = await verifySigV4({ method: sr.method, rawPath: sr.path, rawQuery: sr.query, headers: sr.headers }, {
    lookupSecrets: async () => [v.credentials.secret_access_key],
    now: new Date(v.credentials.timestamp),
    region: v.credentials.region,
    services: [v.credentials.service],
  });
  return auth!;
}

/** Deterministic PRNG so failing splits can be reproduced. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function split(body: Buffer, mode: 'whole' | 'bytes' | number): Buffer[] {
  if (mode === 'whole') return [body];
  if (mode === 'bytes') return Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1));
  const r = rng(mode);
  const out: Buffer[] = [];
  for (let i = 0; i < body.length;) {
    const n = 1 + Math.floor(r() * (r() < 0.5 ? 8 : 3000));
    out.push(body.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Runs parts through a Transform; reports output, error and whether 'end' was emitted (it must not be on error). */
async function run(stream: Transform, parts: Buffer[]): Promise<{ out: Buffer; error?: S3Error; ended: boolean }> {
  const chunks: Buffer[] = [];
  let ended = false;
  stream.on('end', () => (ended = true));
  const sink = new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } });
  try {
    await pipeline(Readable.from(parts, { objectMode: false }), stream, sink);
    return { out: Buffer.concat(chunks), ended };
  } catch (err) {
    if (!(err instanceof S3Error)) throw err;
    return { out: Buffer.concat(chunks), error: err, ended };
  }
}

for (const v of VECTORS) {
  const wire = Buffer.from(v.signed_request.body.data, 'utf8');
  const decoded = Buffer.from(v.request.body.data, 'utf8');
  const headers = nodeHeaders(v.signed_request.headers);
  const expectedChecksum = v.expected.trailer?.headers[0];

  test(`${v.name}: chunk and trailer strings to sign and signatures`, async (t) => {
    const auth = await authOf(v);
    t.is(auth.signature, v.expected.seed_signature ?? auth.signature);
    if (!v.expected.seed_signature) return t.is(auth.payload.mode, 'streaming-unsigned-trailer');
    let previous = auth.signature;
    for (const c of v.expected.chunks) {
      const sts = chunkStringToSign(auth, previous, c.data_sha256!);
      t.is(sts, c.string_to_sign!);
      previous = createHmac('sha256', auth.signingKey).update(sts).digest('hex');
      t.is(previous, c.signature!);
    }
    const tr = v.expected.trailer;
    if (tr?.signature) {
      const sts = trailerStringToSign(auth, previous, tr.headers);
      t.is(sts, tr.string_to_sign!);
      t.is(createHmac('sha256', auth.signingKey).update(sts).digest('hex'), tr.signature);
    }
  });

  for (const mode of ['whole', 'bytes', 1, 2, 3, 4, 5] as const) {
    test(`${v.name}: planBody decodes and verifies (${mode === 'whole' || mode === 'bytes' ? mode : `random split ${mode}`})`, async (t) => {
      const auth = await authOf(v);
      const plan = planBody({ auth, headers });
      t.is(plan.decodedLength, decoded.length);
      const r = await run(plan.stream, split(wire, mode));
      t.is(r.error, undefined);
      t.true(r.out.equals(decoded));
      if (expectedChecksum) {
        t.deepEqual(plan.checksum(), { algorithm: expectedChecksum[0].slice('x-amz-checksum-'.length).toUpperCase(), value: expectedChecksum[1] });
      } else t.is(plan.checksum(), undefined);
    });
  }

  test(`${v.name}: AwsChunkedDecoder alone decodes and collects trailers`, async (t) => {
    const auth = await authOf(v);
    const signing: ChunkSigning | undefined = auth.payload.mode === 'streaming-signed'
      ? { signingKey: auth.signingKey, seedSignature: auth.signature, amzDate: auth.amzDate, scope: auth.scope } : undefined;
    const decoder = new AwsChunkedDecoder({ signing, trailer: Boolean(v.expected.trailer), decodedLength: decoded.length });
    const r = await run(decoder, split(wire, 7));
    t.is(r.error, undefined);
    t.true(r.out.equals(decoded));
    t.deepEqual(decoder.parser.trailers, v.expected.trailer?.headers ?? []);
    t.is(decoder.parser.decodedBytes, decoded.length);
    if (expectedChecksum) {
      const alg = expectedChecksum[0] === 'x-amz-checksum-crc32c' ? 'CRC32C' : 'CRC32';
      t.is(await computeChecksum(alg, r.out), expectedChecksum[1]);
    }
  });

  test(`${v.name}: body tamper gives ${v.tamper_expectations.body}, with no end event`, async (t) => {
    const tampered = Buffer.from(wire);
    tampered[wire.indexOf('\r\n') + 2 + 10] ^= 1;
    const r = await run(planBody({ auth: await authOf(v), headers }).stream, split(tampered, 9));
    const want: Record<string, string> = { 'chunk-signature-mismatch': 'SignatureDoesNotMatch', 'checksum-mismatch': 'BadDigest' };
    t.is(r.error?.code as string | undefined, want[v.tamper_expectations.body]);
    t.false(r.ended);
  });

  test(`${v.name}: truncated bodies fail`, async (t) => {
    const lastChunk = wire.lastIndexOf('\r\n0');
    for (const cut of [0, 5, 100, 8200, lastChunk, lastChunk + 3, lastChunk + 10]) {
      const r = await run(planBody({ auth: await authOf(v), headers }).stream, [wire.subarray(0, cut)]);
      t.truthy(r.error, `cut at ${cut}`);
      t.false(r.ended);
    }
  });

  test(`${v.name}: declared decoded length must match`, async (t) => {
    const auth = await authOf(v);
    for (const delta of [-1, 1]) {
      const r = await run(planBody({ auth, headers: { ...headers, 'x-amz-decoded-content-length': String(decoded.length + delta) } }).stream, [wire]);
      t.is(r.error?.code, 'IncompleteBody');
    }
    const err = t.throws(() => planBody({ auth, headers: { ...headers, 'x-amz-decoded-content-length': undefined } }), { instanceOf: S3Error });
    t.is(err?.code, 'MissingContentLength');
  });
}

const signedTrailer = VECTORS[1];
const unsignedTrailer = VECTORS[2];

test('signed streaming: altered chunk-signature, trailer value and trailer signature are refused', async (t) => {
  const wire = signedTrailer.signed_request.body.data;
  const headers = nodeHeaders(signedTrailer.signed_request.headers);
  const auth = await authOf(signedTrailer);
  const variants = [
    wire.replace('chunk-signature=b474', 'chunk-signature=b475'),
    wire.replace('x-amz-checksum-crc32c:sOO8/Q==', 'x-amz-checksum-crc32c:sOO8/R=='),
    wire.replace('x-amz-trailer-signature:d81f', 'x-amz-trailer-signature:d81e'),
    wire.replace(/x-amz-trailer-signature:[0-9a-f]+\r\n/, ''),
    wire.replace(/;chunk-signature=[0-9a-f]+/, ''),
  ];
  for (const body of variants) {
    const r = await run(planBody({ auth, headers }).stream, [Buffer.from(body)]);
    t.is(r.error?.code, 'SignatureDoesNotMatch');
  }
});

test('unsigned trailer: wrong or missing trailing checksum', async (t) => {
  const wire = unsignedTrailer.signed_request.body.data;
  const headers = nodeHeaders(unsignedTrailer.signed_request.headers);
  const auth = await authOf(unsignedTrailer);
  let r = await run(planBody({ auth, headers }).stream, [Buffer.from(wire.replace('s3SFCQ==', 's3SFCA=='))]);
  t.is(r.error?.code, 'BadDigest');
  r = await run(planBody({ auth, headers }).stream, [Buffer.from(wire.replace('x-amz-checksum-crc32:s3SFCQ==\n\r\n', ''))]);
  t.is(r.error?.code, 'IncompleteBody');
  r = await run(planBody({ auth, headers }).stream, [Buffer.from(wire.replace('x-amz-checksum-crc32:s3SFCQ==', 'x-amz-checksum-crc32:nope'))]);
  t.is(r.error?.code, 'InvalidRequest');
  r = await run(planBody({ auth, headers: { ...headers, 'x-amz-trailer': undefined } }).stream, [Buffer.from(wire)]);
  t.is(r.error?.code, 'InvalidRequest', 'an unannounced checksum trailer is refused');
  // Anonymous uploads may use the unsigned-trailer framing too.
  r = await run(planBody({ auth: undefined, headers }).stream, [Buffer.from(wire)]);
  t.is(r.error, undefined);
  t.is(r.out.length, 17408);
});

// --- signed streaming bodies built here, for chunk-size rules and throughput -------------------------------------

const SIGNING: ChunkSigning = { signingKey: Buffer.alloc(32, 7), seedSignature: 'a'.repeat(64), amzDate: '20240101T000000Z', scope: '20240101/us-east-1/s3/aws4_request' };
const fakeAuth = (trailer: boolean): VerifiedAuth => ({
  accessKeyId: 'AK', location: 'header', payload: { mode: 'streaming-signed', trailer }, signature: SIGNING.seedSignature,
  signingKey: SIGNING.signingKey, scope: SIGNING.scope, amzDate: SIGNING.amzDate,
});

function buildSigned(data: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let previous = SIGNING.seedSignature;
  let offset = 0;
  for (const size of [...sizes, 0]) {
    const chunk = data.subarray(offset, offset + size);
    offset += size;
    previous = createHmac('sha256', SIGNING.signingKey).update(chunkStringToSign(SIGNING, previous, sha256Hex(chunk))).digest('hex');
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${previous}\r\n`), chunk, Buffer.from(size ? '\r\n' : ''));
  }
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

const streamingHeaders = (length: number) => ({ 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': String(length) });

test('signed chunks smaller than 8 KiB are allowed only as the last data chunk', async (t) => {
  const data = Buffer.alloc(20000, 'z');
  const ok = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(16484) }).stream, [buildSigned(data, [8192, 8192, 100])]);
  t.is(ok.error, undefined);
  const bad = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(8292) }).stream, [buildSigned(data, [100, 8192])]);
  t.is(bad.error?.code, 'InvalidChunkSizeError');
  const garbage = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(1) }).stream, [Buffer.from('zz;chunk-signature=00\r\n')]);
  t.is(garbage.error?.code, 'InvalidChunkSizeError');
});

test('plain bodies: x-amz-content-sha256 and length are checked before the end', async (t) => {
  const body = Buffer.from('hello world');
  const signed = (sha256Hex: string): VerifiedAuth => ({ ...fakeAuth(false), payload: { mode: 'signed', sha256Hex } });
  let r = await run(planBody({ auth: signed(sha256Hex(body)), headers: { 'content-length': '11' } }).stream, [body]);
  t.is(r.error, undefined);
  t.true(r.ended);
  r = await run(planBody({ auth: signed(sha256Hex('other')), headers: { 'content-length': '11' } }).stream, [body]);
  t.is(r.error?.code, 'XAmzContentSHA256Mismatch');
  t.false(r.ended);
  r = await run(planBody({ auth: undefined, headers: { 'content-length': '12' } }).stream, [body]);
  t.is(r.error?.code, 'IncompleteBody');
  t.is(planBody({ auth: undefined, headers: { 'content-length': '11' } }).decodedLength, 11);
});

test('x-amz-checksum-* headers are verified for every algorithm', async (t) => {
  const body = Buffer.from('123456789');
  const expected = {
    CRC32: 'y/Q5Jg==', CRC32C: '4waSgw==', CRC64NVME: 'rosUhgp5mIg=',
    SHA1: createHash('sha1').update(body).digest('base64'), SHA256: createHash('sha256').update(body).digest('base64'),
  } as const;
  for (const [alg, value] of Object.entries(expected)) {
    const name = `x-amz-checksum-${alg.toLowerCase()}`;
    const plan = planBody({ auth: undefined, headers: { [name]: value, 'x-amz-sdk-checksum-algorithm': alg.toLowerCase() } });
    t.is((await run(plan.stream, split(body, 'bytes'))).error, undefined, alg);
    t.deepEqual(plan.checksum(), { algorithm: alg, value });
    const wrong = planBody({ auth: undefined, headers: { [name]: value } });
    t.is((await run(wrong.stream, [Buffer.from('12345678X')])).error?.code, 'BadDigest', alg);
  }
  // Algorithm named without a value: computed and reported, as S3 stores it.
  const computed = planBody({ auth: undefined, headers: { 'x-amz-sdk-checksum-algorithm': 'CRC32C' } });
  await run(computed.stream, [body]);
  t.deepEqual(computed.checksum(), { algorithm: 'CRC32C', value: expected.CRC32C });
});

test('impossible checksum and framing combinations are refused up front', (t) => {
  const refused = (headers: Record<string, string>, code: string) => {
    const err = t.throws(() => planBody({ auth: undefined, headers }), { instanceOf: S3Error }, JSON.stringify(headers));
    t.is(err?.code as string | undefined, code, JSON.stringify(headers));
  };
  refused({ 'x-amz-checksum-crc32': 'not base64!' }, 'InvalidRequest');
  refused({ 'x-amz-checksum-crc32': 'AAAAAAAA' }, 'InvalidRequest');
  refused({ 'x-amz-checksum-crc32': 'y/Q5Jg==', 'x-amz-checksum-sha1': createHash('sha1').digest('base64') }, 'InvalidRequest');
  refused({ 'x-amz-sdk-checksum-algorithm': 'MD4' }, 'InvalidRequest');
  refused({ 'x-amz-sdk-checksum-algorithm': 'SHA1', 'x-amz-checksum-crc32': 'y/Q5Jg==' }, 'InvalidRequest');
  refused({ 'x-amz-trailer': 'x-amz-checksum-crc32' }, 'InvalidRequest');
  refused({ 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-decoded-content-length': '1', 'x-amz-trailer': 'x-amz-checksum-md5' }, 'InvalidRequest');
  refused({ 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' }, 'MissingContentLength');
  refused({ 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '1' }, 'InvalidRequest');
});

test('stored Content-Encoding drops aws-chunked', (t) => {
  t.is(storedContentEncoding('aws-chunked'), undefined);
  t.is(storedContentEncoding('aws-chunked, gzip'), 'gzip');
  t.is(storedContentEncoding('gzip'), 'gzip');
  t.is(storedContentEncoding(undefined), undefined);
});

test('throughput: 64 MiB of signed 64 KiB chunks in 16 KiB packets, with CRC32C', async (t) => {
  const size = 64 * 1024 * 1024;
  const data = Buffer.alloc(size, 'q');
  const wire = buildSigned(data, Array.from({ length: size / 65536 }, () => 65536));
  const packets = Array.from({ length: Math.ceil(wire.length / 16384) }, (_, i) => wire.subarray(i * 16384, (i + 1) * 16384));
  const plan = planBody({ auth: fakeAuth(false), headers: { ...streamingHeaders(size), 'x-amz-sdk-checksum-algorithm': 'CRC32C' } });
  const start = process.hrtime.bigint();
  const r = await run(plan.stream, packets);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.is(r.error, undefined);
  t.is(r.out.length, size);
  t.log(`${(size / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`);
  t.true(ms < 20_000);
});

test('table-driven CRC-32C agrees with @aws-crypto/crc32c, whole and incrementally', async (t) => {
  const { crc32c: reference } = await import('@aws-crypto/crc32c');
  const { crc32c } = await import('../gateway/auth/checksums.ts');
  const r = rng(42);
  for (const n of [0, 1, 7, 8, 9, 63, 64, 65, 1000, 65537]) {
    const data = Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
    t.is(crc32c(data), reference(data), `length ${n}`);
    const cut = Math.floor(n / 3);
    t.is(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), reference(data), `split ${n}`);
  }
});

test('onRefused hears a refusal of what the signature covers once, fed byte by byte; a checksum mismatch not at all', async (t) => {
  const data = Buffer.alloc(20000, 'q');
  const heard: string[] = [];
  const onRefused = (err: S3Error) => heard.push(err.code);
  // A data byte altered: the first chunk's signature fails, and nothing after it is reported again.
  const wire = buildSigned(data, [8192, 8192, 3616]);
  wire[200] ^= 1;
  let r = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(20000), onRefused }).stream, split(wire, 'bytes'));
  t.is(r.error?.code, 'SignatureDoesNotMatch');
  t.deepEqual(heard, ['SignatureDoesNotMatch']);
  // Found in flush: the decoded length disagrees.
  heard.length = 0;
  r = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(20001), onRefused }).stream, [buildSigned(data, [8192, 8192, 3616])]);
  t.is(r.error?.code, 'IncompleteBody');
  t.deepEqual(heard, ['IncompleteBody']);
  // A signed x-amz-checksum-crc32 the body does not match is its integrity (BadDigest), as Content-MD5 is.
  heard.length = 0;
  const crc = await computeChecksum('CRC32', Buffer.from('other'));
  r = await run(planBody({ auth: { ...fakeAuth(false), payload: { mode: 'unsigned' } }, headers: { 'content-length': '5', 'x-amz-checksum-crc32': crc }, onRefused }).stream, [Buffer.from('hello')]);
  t.is(r.error?.code, 'BadDigest');
  t.deepEqual(heard, []);
  // A body that verifies reports nothing.
  r = await run(planBody({ auth: fakeAuth(false), headers: streamingHeaders(20000), onRefused }).stream, [buildSigned(data, [8192, 8192, 3616])]);
  t.is(r.error, undefined);
  t.deepEqual(heard, []);
});
