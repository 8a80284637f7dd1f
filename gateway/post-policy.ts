/**
 * Browser form uploads (POST Object) with a SigV4 POST policy, checked as S3 checks them (S3 API reference,
 * "Authenticating Requests in Browser-Based Uploads Using POST (AWS Signature Version 4)" and "Creating a POST
 * Policy"): the policy is a base64 JSON document signed with the SigV4 signing key; it must not have expired, and
 * every form field (except the signature, the file, the policy and x-ignore-*) must be allowed by one of its
 * conditions. The bucket is the one in the URL, whatever the form claims (MinIO CVE-2023-28434 let a form name
 * another bucket than the one its policy was checked against).
 */
import type { Readable } from 'node:stream';
import { S3Error } from './errors.ts';
import { utf8Text } from './utf8.ts';

/** The fields of a form, names lower-cased (S3 matches form field names case-insensitively). */
export type FormFields = Map<string, string>;

/** What a verified policy still constrains while the file streams. */
export interface PolicyLimits {
  /** content-length-range, inclusive, when the policy names one. */
  minSize?: number;
  maxSize?: number;
}

/** A verified form: its fields, the file still streaming, and the policy's size range. */
export interface PostForm {
  fields: FormFields;
  file: Readable;
  filename: string;
  fileType?: string;
  limits: PolicyLimits;
}

const policyError = (message: string) => new S3Error('AccessDenied', `Invalid according to Policy: ${message}`);

/** Fields a policy need not mention: the signature (V4 or V2), the V2 access key id, the file, the policy itself. */
function exempt(name: string): boolean {
  return ['x-amz-signature', 'signature', 'awsaccesskeyid', 'file', 'policy'].includes(name) || name.startsWith('x-ignore-');
}

type Condition = { op: 'eq' | 'starts-with'; field: string; value: string } | { op: 'range'; min: number; max: number };

function parseCondition(c: unknown): Condition {
  if (Array.isArray(c)) {
    const [op, a, b] = c as unknown[];
    if (typeof op !== 'string') throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid Condition');
    const lower = op.toLowerCase();
    if (lower === 'content-length-range') {
      const min = Number(a);
      const max = Number(b);
      if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) {
        throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid content-length-range');
      }
      return { op: 'range', min, max };
    }
    if ((lower !== 'eq' && lower !== 'starts-with') || typeof a !== 'string' || !a.startsWith('$') || typeof b !== 'string') {
      throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid Condition');
    }
    return { op: lower, field: a.slice(1).toLowerCase(), value: b };
  }
  if (c && typeof c === 'object') {
    const entries = Object.entries(c as Record<string, unknown>);
    if (entries.length !== 1 || typeof entries[0]![1] !== 'string') throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid Simple-Condition');
    return { op: 'eq', field: entries[0]![0].toLowerCase(), value: entries[0]![1] as string };
  }
  throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid Condition');
}

/**
 * Decodes the policy and checks it against the form fields and the URL's bucket at `now`. Throws AccessDenied
 * (expired, a condition failed, a field not covered) or InvalidPolicyDocument (not a policy); returns what remains
 * to check while the file streams.
 */
export function checkPostPolicy(policyB64: string, fields: FormFields, bucket: string, now: Date, filename = ''): PolicyLimits {
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    // Strictly UTF-8 (RFC 8259 §8.1): a condition on `pf/\xff` must not read as one on the key `pf/\uFFFD`.
    const json = utf8Text(Buffer.from(policyB64, 'base64'));
    if (json === undefined) throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
    doc = JSON.parse(json) as typeof doc;
  } catch {
    throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
  }
  if (typeof doc !== 'object' || doc === null || typeof doc.expiration !== 'string' || !Array.isArray(doc.conditions)) {
    throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Policy missing expiration or conditions.');
  }
  // ISO 8601 in UTC, as the POST policy reference writes it ("2007-12-01T12:00:00.000Z"); anything else is malformed.
  const expires = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(doc.expiration) ? Date.parse(doc.expiration) : NaN;
  if (Number.isNaN(expires)) throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid \'expiration\' value.');
  if (expires < now.getTime()) throw policyError('Policy expired.');
  const conditions = doc.conditions.map(parseCondition);
  // The bucket a policy speaks of is the URL's: the form's own bucket field, if any, must agree with it.
  const all = new Map(fields);
  const formBucket = all.get('bucket');
  if (formBucket !== undefined && formBucket !== bucket) throw policyError('Bucket in the form is not the bucket of the request');
  all.set('bucket', bucket);
  const covered = new Set<string>();
  const limits: PolicyLimits = {};
  for (const c of conditions) {
    if (c.op === 'range') {
      limits.minSize = c.min;
      limits.maxSize = c.max;
      continue;
    }
    const value = all.get(c.field) ?? '';
    // A key with ${filename} satisfies a condition written for the field as sent or for the key it becomes.
    const values = c.field === 'key' ? [value, value.replaceAll('${filename}', filename)] : [value];
    const ok = values.some((v) => (c.op === 'eq' ? v === c.value : v.startsWith(c.value)));
    if (!ok) throw policyError(`Policy Condition failed: ["${c.op}", "$${c.field}", "${c.value}"]`);
    covered.add(c.field);
  }
  if (!covered.has('bucket')) throw policyError('Policy Condition failed: ["eq", "$bucket", ...] is required');
  for (const name of fields.keys()) {
    if (!exempt(name) && !covered.has(name)) throw policyError(`Extra input fields: ${name}`);
  }
  return limits;
}
