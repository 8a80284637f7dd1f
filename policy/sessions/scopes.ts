/**
 * Narrowing for temporary credentials: the intersection of two grant lists (a session never exceeds its parent or
 * its role), and session policies — IAM-style JSON or Anvil's own grant list — mapped onto grants.
 */
import { InvalidInputError } from '../errors.ts';
import { invalidGrantReason } from '../scopes.ts';
import type { Family, ScopeGrant } from '../types.ts';

/** Families a session may never carry: a temporary credential must not mint permanent ones. */
export const SESSION_EXCLUDED_FAMILIES: ReadonlySet<Family> = new Set(['admin']);

function intersectOne(a: ScopeGrant, b: ScopeGrant): ScopeGrant | undefined {
  const bucket = a.bucket === '*' ? b.bucket : b.bucket === '*' || b.bucket === a.bucket ? a.bucket : undefined;
  if (bucket === undefined) return undefined;
  const pa = a.prefix ?? '';
  const pb = b.prefix ?? '';
  const prefix = pa.startsWith(pb) ? pa : pb.startsWith(pa) ? pb : undefined;
  if (prefix === undefined) return undefined;
  const families = a.families.filter((f) => b.families.includes(f));
  if (families.length === 0) return undefined;
  return { families, bucket, ...(prefix ? { prefix } : {}) };
}

/** Every family × bucket × prefix held in both lists. */
export function intersectScopes(a: readonly ScopeGrant[], b: readonly ScopeGrant[]): ScopeGrant[] {
  const out: ScopeGrant[] = [];
  for (const x of a) for (const y of b) {
    const both = intersectOne(x, y);
    if (both) out.push(both);
  }
  return out;
}

/** Drops the families sessions never carry, and grants left empty. */
export function sessionScopes(scopes: readonly ScopeGrant[]): ScopeGrant[] {
  return scopes
    .map((g) => ({ ...g, families: g.families.filter((f) => !SESSION_EXCLUDED_FAMILIES.has(f)) }))
    .filter((g) => g.families.length > 0);
}

/** IAM actions the session-policy mapper understands, and the families each allows. */
export const IAM_ACTIONS: Record<string, Family[]> = {
  's3:*': ['object:read', 'object:write', 'object:delete', 'object:list', 'bucket:read', 'bucket:admin'],
  's3:Get*': ['object:read', 'bucket:read'],
  's3:List*': ['object:list', 'bucket:read'],
  's3:Put*': ['object:write'],
  's3:Delete*': ['object:delete'],
  's3:GetObject': ['object:read'],
  's3:GetObjectVersion': ['object:read'],
  's3:GetObjectTagging': ['object:read'],
  's3:PutObject': ['object:write'],
  's3:PutObjectTagging': ['object:write'],
  's3:DeleteObjectTagging': ['object:write'],
  's3:AbortMultipartUpload': ['object:write'],
  's3:ListMultipartUploadParts': ['object:write'],
  's3:DeleteObject': ['object:delete'],
  's3:ListBucket': ['object:list'],
  's3:ListBucketVersions': ['object:list'],
  's3:ListBucketMultipartUploads': ['object:list'],
  's3:GetBucketLocation': ['bucket:read'],
  's3:ListAllMyBuckets': ['bucket:read'],
  's3:CreateBucket': ['bucket:admin'],
  's3:DeleteBucket': ['bucket:admin'],
};

const S3_ARN = 'arn:aws:s3:::';

/** `*`, `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/*` or `arn:aws:s3:::bucket/prefix*` as bucket and prefix. */
function resourceOf(resource: unknown): { bucket: string; prefix: string } {
  if (resource === '*' || resource === `${S3_ARN}*`) return { bucket: '*', prefix: '' };
  if (typeof resource !== 'string' || !resource.startsWith(S3_ARN)) throw new InvalidInputError(`unsupported Resource ${String(resource)}`);
  const rest = resource.slice(S3_ARN.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (prefix.endsWith('*')) prefix = prefix.slice(0, -1);
  // Only a trailing `*` has a meaning here; anything else would silently grant something other than what was written.
  if (bucket === '' || /[*?]/.test(bucket) || /[*?]/.test(prefix)) throw new InvalidInputError(`unsupported wildcard in Resource ${resource}`);
  return { bucket, prefix };
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/**
 * Grants from a session policy: either Anvil's `{"scopes": [grant…]}` or an IAM document whose statements all
 * Allow known s3 actions on s3 ARNs (`bucket/prefix*` becomes a key prefix; a key without `*` is used as a prefix).
 * Deny statements, conditions and other wildcards are refused rather than approximated.
 */
export function sessionPolicyGrants(policy: string): ScopeGrant[] {
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch {
    throw new InvalidInputError('the session policy is not valid JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new InvalidInputError('the session policy must be a JSON object');
  const d = doc as Record<string, unknown>;
  if ('scopes' in d) {
    const invalid = invalidGrantReason(d.scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    return (d.scopes as ScopeGrant[]).map(({ families, bucket, prefix }) => ({ families: [...families], bucket, ...(prefix ? { prefix } : {}) }));
  }
  if (!('Statement' in d)) throw new InvalidInputError('the session policy needs Statement or scopes');
  const grants: ScopeGrant[] = [];
  for (const statement of list(d.Statement)) {
    if (statement === null || typeof statement !== 'object') throw new InvalidInputError('each Statement must be an object');
    const s = statement as Record<string, unknown>;
    if (s.Effect !== 'Allow') throw new InvalidInputError('only Effect "Allow" statements are supported');
    const unknownField = Object.keys(s).find((k) => !['Sid', 'Effect', 'Action', 'Resource'].includes(k));
    if (unknownField !== undefined) throw new InvalidInputError(`unsupported Statement field ${unknownField}`);
    const families = new Set<Family>();
    for (const action of list(s.Action)) {
      const mapped = typeof action === 'string' ? IAM_ACTIONS[action] : undefined;
      if (mapped === undefined) throw new InvalidInputError(`unsupported Action ${String(action)}`);
      mapped.forEach((f) => families.add(f));
    }
    for (const resource of list(s.Resource)) {
      const { bucket, prefix } = resourceOf(resource);
      grants.push({ families: [...families], bucket, ...(prefix ? { prefix } : {}) });
    }
  }
  return grants;
}
