/** GetObject and HeadObject: ranges, partNumber, conditional headers, response-* overrides. */
import { S3Error } from '../errors.ts';
import type { OpContext, Operation, OpResult } from '../operation.ts';
import type { GetObjectInput, ObjectMeta, ObjectRead } from '../../storage/backend.ts';
import { InvalidRangeError } from '../../storage/errors.ts';
import { conditionsFromHeaders, responseOverrides, header, objectHeaders, parseRange } from '../s3-headers.ts';

function partNumberOf(op: OpContext): number | undefined {
  const v = op.query.get('partNumber');
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 10000) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
      fields: { ArgumentName: 'partNumber', ArgumentValue: v },
    });
  }
  return n;
}

/** A character beyond ASCII. */
const NOT_ASCII = /[^\x00-\x7f]/;

async function read(op: OpContext, withBody: boolean): Promise<OpResult> {
  const partNumber = partNumberOf(op);
  const overrides = responseOverrides(op.query); // refused before the object is opened
  const range = parseRange(header(op.headers, 'range'));
  if (partNumber !== undefined && range !== undefined) {
    throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
  }
  const request = { bucket: op.bucket, key: op.key, partNumber, conditions: conditionsFromHeaders(op.headers) };
  const ifRange = range !== undefined ? header(op.headers, 'if-range') : undefined;
  let res = await readRange(op, request, range, ifRange);
  // If-Range (RFC 9110 §13.1.5, honoured by S3): a validator that no longer names the object turns the ranged read into
  // a whole one, so a resuming client never splices bytes of a newer object onto an older one. The object is read
  // again without the range rather than trusting the first read's body, which is already cut to the range.
  if (res.range && ifRange !== undefined && !ifRangeHolds(ifRange, res.meta)) {
    res.body.destroy();
    res = await op.services.backend.getObject(request);
  }
  const checksumMode = header(op.headers, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED';
  const headers = objectHeaders(res.meta, { checksumMode: checksumMode && !res.range, partsCount: partNumber !== undefined });
  // A part read returns that part's checksum (GetObject API reference, partNumber with x-amz-checksum-mode).
  const partSum = partNumber !== undefined ? res.meta.partChecksums?.[partNumber - 1] : undefined;
  if (checksumMode && partSum !== undefined && res.meta.checksum) headers[`x-amz-checksum-${res.meta.checksum.algorithm.toLowerCase()}`] = partSum;
  Object.assign(headers, overrides);
  let status = 200;
  let length = res.meta.size;
  if (res.range) {
    status = 206;
    length = res.range.end - res.range.start + 1;
    headers['content-range'] = `bytes ${res.range.start}-${res.range.end}/${res.meta.size}`;
  }
  headers['content-length'] = String(length);
  if (!withBody) {
    if (!res.bytes) res.body.destroy();
    return { status, headers };
  }
  // Bytes the backend already holds go out in one write, without a stream; not with a header value beyond ASCII
  // (a latin1 response-content-disposition, say), which Node 20 garbles when headers and body go out in one end().
  let ascii = true;
  for (const name in headers) if (headers[name] !== undefined && NOT_ASCII.test(headers[name])) ascii = false;
  return { status, headers, body: res.bytes && ascii ? res.bytes : res.body };
}

/**
 * The ranged read. A range past the end is InvalidRange (416) only while If-Range, if sent, still names the object:
 * with a stale validator the range is ignored before it is evaluated (RFC 9110 §13.1.5), so the whole object is
 * served, as for any other range.
 */
async function readRange(op: OpContext, request: GetObjectInput, range: GetObjectInput['range'], ifRange: string | undefined): Promise<ObjectRead> {
  try {
    return await op.services.backend.getObject(range === undefined ? request : { ...request, range });
  } catch (err) {
    if (!(err instanceof InvalidRangeError) || ifRange === undefined) throw err;
    const whole = await op.services.backend.getObject(request);
    if (!ifRangeHolds(ifRange, whole.meta)) return whole;
    whole.body.destroy();
    throw err;
  }
}

/**
 * True when an If-Range value still names the object: a strong entity tag equal to its ETag, or an HTTP-date equal
 * to its Last-Modified (to the second, the precision Last-Modified is sent with). A weak tag never matches, and a
 * value that is neither form does not either: both then serve the whole object (RFC 9110 §13.1.5).
 */
function ifRangeHolds(value: string, meta: ObjectMeta): boolean {
  const v = value.trim();
  if (v.startsWith('"')) return v === `"${meta.etag}"`;
  if (v.startsWith('W/')) return false;
  const date = Date.parse(v);
  return !Number.isNaN(date) && Math.floor(meta.lastModified.getTime() / 1000) === Math.floor(date / 1000);
}

export const GetObject: Operation = (op) => read(op, true);
export const HeadObject: Operation = (op) => read(op, false);
