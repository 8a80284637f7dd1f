/**
 * Refusals found while a request's body streams, end to end on the embedded store and over MinIO: a tampered
 * aws-chunked upload (data, chunk, final-chunk and trailer signatures), a bad chunk size, a decoded length the body
 * disagrees with, an x-amz-content-sha256 the body does not match, a trailer section that repeats a checksum. Each is
 * answered with its S3 error, stores nothing and writes exactly one denial line (layer signature), as a signature
 * refused at the headers does (README, Access control and Denials: "Every refused request writes one row"); an admin
 * API or STS body that is not the one signed too.
 * The chunk signatures are computed here from the SigV4 streaming spec (S3 API Reference, "Signature Calculations
 * for the Authorization Header: Transferring Payload in Multiple Chunks"), not with the gateway's own code.
 */
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { denials } from './helpers/admin.ts';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';
import { errorCode, send, signedSend, signRequest, type RawResponse } from './helpers/raw.ts';
import { ADMIN_PREFIX } from '../gateway/admin/index.ts';

const test = anyTest as TestFn<unknown>;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const crc32Base64 = (data: Buffer) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(data));
  return b.toString('base64');
};

/** What a chunk or trailer signature chains from: the seed request's date, scope, key and signature. */
interface Seed {
  amzDate: string;
  scope: string;
  key: Buffer;
  signature: string;
}

function seedOf(headers: Record<string, string>): Seed {
  const auth = headers.authorization!;
  const [, date, region, service] = /Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth)!;
  let key = Buffer.from(`AWS4${ROOT.secretAccessKey}`);
  for (const part of [date!, region!, service!, 'aws4_request']) key = hmac(key, part);
  return { amzDate: headers['x-amz-date']!, scope: `${date}/${region}/${service}/aws4_request`, key, signature: /Signature=([0-9a-f]+)/.exec(auth)![1]! };
}

const chunkSignature = (s: Seed, previous: string, data: Buffer) =>
  hmac(s.key, ['AWS4-HMAC-SHA256-PAYLOAD', s.amzDate, s.scope, previous, sha256(''), sha256(data)].join('\n')).toString('hex');
const trailerSignature = (s: Seed, previous: string, trailers: string) =>
  hmac(s.key, ['AWS4-HMAC-SHA256-TRAILER', s.amzDate, s.scope, previous, sha256(trailers)].join('\n')).toString('hex');

/** How to spoil an aws-chunked upload. */
interface Spoil {
  /** data signed, other bytes sent */
  alterData?: boolean;
  badChunkSignature?: boolean;
  badFinalSignature?: boolean;
  badTrailerSignature?: boolean;
  /** trailer lines (`name:value`) instead of the one right checksum */
  trailers?: (right: string) => string[];
  /** x-amz-trailer-signature values instead of the one right signature */
  trailerSignatures?: (right: string) => string[];
  /** x-amz-decoded-content-length off by this much */
  lengthOff?: number;
  /** the wire body replaced by this, once signed */
  wire?: Buffer;
}

/**
 * A PUT of `data` in one signed chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], with a CRC32 trailer) or
 * unsigned with a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER), spoiled as asked; the raw answer.
 */
async function chunkedPut(f: Flavour, path: string, mode: 'signed' | 'signed-trailer' | 'unsigned-trailer', spoil: Spoil = {}): Promise<RawResponse> {
  const data = randomBytes(100);
  const trailer = mode !== 'signed';
  const right = `x-amz-checksum-crc32:${crc32Base64(data)}`;
  const trailerLines = trailer ? (spoil.trailers?.(right) ?? [right]) : [];
  const payloadHash = { signed: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'signed-trailer': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'unsigned-trailer': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' }[mode];
  // Framed once with placeholder signatures of the right length to learn the content-length, then signed.
  const frame = (sig1: string, sig0: string, trailerSig: string, sent: Buffer): Buffer => {
    const ext = (sig: string) => (mode === 'unsigned-trailer' ? '' : `;chunk-signature=${sig}`);
    const parts = [`${data.length.toString(16)}${ext(sig1)}\r\n`, sent, `\r\n0${ext(sig0)}\r\n`];
    const signatures = mode === 'signed-trailer' ? (spoil.trailerSignatures?.(trailerSig) ?? [trailerSig]) : [];
    if (trailer) parts.push(trailerLines.map((l) => `${l}\r\n`).join(''), signatures.map((sig) => `x-amz-trailer-signature:${sig}\r\n`).join(''));
    parts.push('\r\n');
    return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  };
  const sent = spoil.alterData ? Buffer.concat([data.subarray(0, 50), Buffer.from([data[50]! ^ 1]), data.subarray(51)]) : data;
  const length = frame('0'.repeat(64), '0'.repeat(64), '0'.repeat(64), sent).length;
  const headers: Record<string, string> = {
    'content-encoding': 'aws-chunked',
    'content-length': String(spoil.wire?.length ?? length),
    'x-amz-decoded-content-length': String(data.length + (spoil.lengthOff ?? 0)),
  };
  if (trailer) headers['x-amz-trailer'] = 'x-amz-checksum-crc32';
  const signed = await signRequest({ url: f.gw.gw.url, method: 'PUT', path, payloadHash, headers });
  const seed = seedOf(signed.headers);
  const flip = (sig: string) => sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
  let sig1 = chunkSignature(seed, seed.signature, data);
  if (spoil.badChunkSignature) sig1 = flip(sig1);
  let sig0 = chunkSignature(seed, sig1, Buffer.alloc(0));
  if (spoil.badFinalSignature) sig0 = flip(sig0);
  let trailerSig = trailerSignature(seed, sig0, trailerLines.map((l) => `${l}\n`).join(''));
  if (spoil.badTrailerSignature) trailerSig = flip(trailerSig);
  const body = spoil.wire ?? frame(sig1, sig0, trailerSig, sent);
  return send({ url: f.gw.gw.url, method: 'PUT', path: signed.path, headers: signed.headers, body });
}

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `pr-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function stored(f: Flavour, bucket: string, key: string): Promise<boolean> {
  try {
    await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

/** The answer is `status code`, nothing is stored, and the request wrote exactly one denial line, layer signature. */
async function assertRefusedOnce(t: ExecutionContext, f: Flavour, res: RawResponse, want: { status: number; code: string; bucket: string; key: string; label: string }): Promise<void> {
  t.is(res.status, want.status, `${want.label}: ${res.body}`);
  t.is(errorCode(res), want.code, want.label);
  const requestId = res.headers['x-amz-request-id'] as string;
  t.truthy(requestId, want.label);
  const lines = (await denials(f.gw)).filter((l) => l.requestId === requestId);
  t.is(lines.length, 1, `${want.label}: ${JSON.stringify(lines)}`);
  const line = lines[0];
  if (line) {
    t.is(line.layer, 'signature', want.label);
    t.true(line.reason.startsWith(`${want.code}: `), `${want.label}: ${line.reason}`);
    t.is(line.accessKeyId, ROOT.accessKeyId, want.label);
    t.is(line.action, 'PutObject', want.label);
    t.is(line.bucket, want.bucket, want.label);
    t.is(line.key, want.key, want.label);
    // Never the signature itself, nor any chunk's.
    t.notRegex(JSON.stringify(line), /[0-9a-f]{64}/, want.label);
  }
  t.false(await stored(f, want.bucket, want.key), `${want.label}: nothing stored`);
}

onEachBackend(test, 'payload-refusals', (it) => {
  it('a tampered aws-chunked upload is refused with one denial line each, nothing stored', async (t, f) => {
    const bucket = await freshBucket(f);
    const cases: Array<{ label: string; mode: 'signed' | 'signed-trailer' | 'unsigned-trailer'; spoil: Spoil; status: number; code: string }> = [
      { label: 'altered data', mode: 'signed', spoil: { alterData: true }, status: 403, code: 'SignatureDoesNotMatch' },
      { label: 'bad chunk signature', mode: 'signed', spoil: { badChunkSignature: true }, status: 403, code: 'SignatureDoesNotMatch' },
      { label: 'bad final chunk signature', mode: 'signed-trailer', spoil: { badFinalSignature: true }, status: 403, code: 'SignatureDoesNotMatch' },
      { label: 'bad trailer signature', mode: 'signed-trailer', spoil: { badTrailerSignature: true }, status: 403, code: 'SignatureDoesNotMatch' },
      { label: 'bad chunk size', mode: 'signed', spoil: { wire: Buffer.from('zz;chunk-signature=00\r\n\r\n') }, status: 403, code: 'InvalidChunkSizeError' },
      { label: 'decoded length too small', mode: 'signed', spoil: { lengthOff: -5 }, status: 400, code: 'IncompleteBody' },
      { label: 'decoded length too large', mode: 'unsigned-trailer', spoil: { lengthOff: 5 }, status: 400, code: 'IncompleteBody' },
    ];
    for (const c of cases) {
      const key = `chunked-${c.label.replace(/ /g, '-')}`;
      const res = await chunkedPut(f, `/${bucket}/${key}`, c.mode, c.spoil);
      await assertRefusedOnce(t, f, res, { status: c.status, code: c.code, bucket, key, label: c.label });
    }
    // The unspoiled uploads are stored, so what the cases refuse is only the spoiling.
    for (const mode of ['signed', 'signed-trailer', 'unsigned-trailer'] as const) {
      const res = await chunkedPut(f, `/${bucket}/whole-${mode}`, mode);
      t.is(res.status, 200, `${mode}: ${res.body}`);
    }
  });

  it('a body that does not match its x-amz-content-sha256 is refused with one denial line, nothing stored', async (t, f) => {
    const bucket = await freshBucket(f);
    const body = 'the body that was sent';
    const signed = await signRequest({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/sha`, body, payloadHash: sha256('the body that was signed') });
    const res = await send({ url: f.gw.gw.url, method: 'PUT', path: signed.path, headers: signed.headers, body });
    await assertRefusedOnce(t, f, res, { status: 400, code: 'XAmzContentSHA256Mismatch', bucket, key: 'sha', label: 'sha256 mismatch' });
  });

  it('a trailer section repeating x-amz-checksum-crc32 or x-amz-trailer-signature is 400 InvalidArgument, one denial line, nothing stored', async (t, f) => {
    const bucket = await freshBucket(f);
    for (const mode of ['signed-trailer', 'unsigned-trailer'] as const) {
      for (const [label, second] of [['right then wrong', 'AAAAAA=='], ['right then garbage', 'notbase64!!'], ['right twice', undefined]] as const) {
        const key = `dup-${mode}-${label.replace(/ /g, '-')}`;
        const res = await chunkedPut(f, `/${bucket}/${key}`, mode, { trailers: (right) => [right, second === undefined ? right : `x-amz-checksum-crc32:${second}`] });
        await assertRefusedOnce(t, f, res, { status: 400, code: 'InvalidArgument', bucket, key, label: `${mode} ${label}` });
        t.regex(res.body, /<ArgumentName>x-amz-checksum-crc32<\/ArgumentName>/);
      }
    }
    // The trailer's own signature, wrong then right: the copy checked must not depend on the order.
    const key = 'dup-trailer-signature';
    const res = await chunkedPut(f, `/${bucket}/${key}`, 'signed-trailer', { trailerSignatures: (right) => ['0'.repeat(64), right] });
    await assertRefusedOnce(t, f, res, { status: 400, code: 'InvalidArgument', bucket, key, label: 'repeated trailer signature' });
    t.regex(res.body, /<ArgumentName>x-amz-trailer-signature<\/ArgumentName>/);
  });

  it('a signature refused at the headers still writes exactly one denial line', async (t, f) => {
    const bucket = await freshBucket(f);
    const signed = await signRequest({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/hdr`, body: 'x' });
    const headers = { ...signed.headers, authorization: signed.headers.authorization!.replace(/Signature=[0-9a-f]{4}/, 'Signature=0000') };
    const res = await send({ url: f.gw.gw.url, method: 'PUT', path: signed.path, headers, body: 'x' });
    await assertRefusedOnce(t, f, res, { status: 403, code: 'SignatureDoesNotMatch', bucket, key: 'hdr', label: 'header signature' });
  });
});

test('an admin or STS body that is not the one signed writes one denial line (layer signature), nothing changed', async (t) => {
  const gw = await startTestGateway();
  try {
    const admin = await signedSend({
      url: gw.gw.url, method: 'POST', path: `${ADMIN_PREFIX}/tenants`, body: '{"name":"tampered"}', headers: { 'content-type': 'application/json' },
      payloadHash: sha256('{"name":"signed"}'),
    });
    t.is(admin.status, 400, admin.body);
    const adminId = JSON.parse(admin.body).error.requestId as string;
    const sts = await signedSend({
      url: gw.gw.url, method: 'POST', path: '/', body: 'Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3Aroot%3Arole%2Fr&RoleSessionName=s', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payloadHash: sha256('Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3Aroot%3Arole%2Fother&RoleSessionName=s'),
    });
    t.is(sts.status, 400, sts.body);
    const stsId = /<RequestId>([^<]+)<\/RequestId>/.exec(sts.body)?.[1] ?? (sts.headers['x-amzn-requestid'] as string);
    const lines = await denials(gw);
    const adminLines = lines.filter((l) => l.requestId === adminId);
    t.is(adminLines.length, 1, JSON.stringify(adminLines));
    t.is(adminLines[0]?.layer, 'signature');
    t.regex(adminLines[0]?.reason ?? '', /^XAmzContentSHA256Mismatch: /);
    t.is(adminLines[0]?.accessKeyId, ROOT.accessKeyId);
    t.is(adminLines[0]?.action, `Admin:POST /tenants`);
    const stsLines = lines.filter((l) => l.requestId === stsId);
    t.is(stsLines.length, 1, `${stsId} ${JSON.stringify(stsLines)}`);
    t.is(stsLines[0]?.layer, 'signature');
    t.regex(stsLines[0]?.reason ?? '', /^XAmzContentSHA256Mismatch: /);
    t.notRegex(JSON.stringify([...adminLines, ...stsLines]), /[0-9a-f]{64}/);
    t.is((await signedSend({ url: gw.gw.url, method: 'GET', path: `${ADMIN_PREFIX}/tenants/tampered` })).status, 404);
  } finally {
    await gw.close();
  }
});
