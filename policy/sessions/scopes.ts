/**
 * Narrowing for temporary credentials: the intersection of two grant lists (a session never exceeds its parent or
 * its role), and session policies — IAM-style JSON or Anvil's own grant list — mapped onto grants.
 */
import { InvalidInputError } from '../errors.ts';
import { intersectScopes, invalidGrantReason, normalizeGrant } from '../scopes.ts';
import type { Family, ScopeGrant } from '../types.ts';

/** Families a session may never carry: a temporary credential must not mint permanent ones. */
export const SESSION_EXCLUDED_FAMILIES: ReadonlySet<Family> = new Set(['admin']);

/** Every family × bucket × key space held in both lists (kept here for callers of the sessions module). */
export { intersectScopes };

/** Drops the families sessions never carry, and grants left empty. */
export function sessionScopes(scopes: readonly ScopeGrant[]): ScopeGrant[] {
  return scopes
    .map((g) => ({ ...g, families: g.families.filter((f) => !SESSION_EXCLUDED_FAMILIES.has(f)) }))
    .filter((g) => g.families.length > 0);
}

/** The level of resource an IAM action applies to, and so the ARNs it can match. */
type ArnLevel = 'object' | 'bucket';

/**
 * IAM actions the session-policy mapper knows, with the resource type each applies to: object actions only match
 * object ARNs, bucket actions only bucket ARNs, so `s3:GetObject` on `arn:aws:s3:::b` allows nothing. Source:
 * Amazon S3 User Guide, "Policy actions for Amazon S3", and the Service Authorization Reference (resource types).
 */
export const IAM_ACTIONS: Record<string, ArnLevel> = {
  's3:GetObject': 'object',
  's3:GetObjectVersion': 'object',
  's3:GetObjectTagging': 'object',
  's3:PutObject': 'object',
  's3:PutObjectTagging': 'object',
  's3:DeleteObjectTagging': 'object',
  's3:AbortMultipartUpload': 'object',
  's3:ListMultipartUploadParts': 'object',
  's3:DeleteObject': 'object',
  's3:ListBucket': 'bucket',
  's3:ListBucketVersions': 'bucket',
  's3:ListBucketMultipartUploads': 'bucket',
  's3:GetBucketLocation': 'bucket',
  's3:GetBucketVersioning': 'bucket',
  's3:ListAllMyBuckets': 'bucket',
  's3:CreateBucket': 'bucket',
  's3:DeleteBucket': 'bucket',
};

/**
 * What a statement must allow for each family, at which ARN level (any one of the action sets). A family is granted
 * only when its defining action is allowed: s3:PutObjectTagging alone cannot become object:write (which would also
 * allow PutObject), so it grants nothing. The family's other operations (HeadObject and tags with GetObject,
 * multipart steps with PutObject, versions and uploads listings with ListBucket) follow S3's own mapping of
 * operations to these defining actions.
 */
const FAMILY_ACTIONS: Partial<Record<Family, { level: ArnLevel; anyOf: string[][] }>> = {
  'object:read': { level: 'object', anyOf: [['s3:GetObject']] },
  'object:write': { level: 'object', anyOf: [['s3:PutObject']] },
  'object:delete': { level: 'object', anyOf: [['s3:DeleteObject']] },
  'object:list': { level: 'bucket', anyOf: [['s3:ListBucket']] },
  'bucket:read': { level: 'bucket', anyOf: [['s3:ListBucket'], ['s3:GetBucketLocation'], ['s3:ListAllMyBuckets']] },
  'bucket:admin': { level: 'bucket', anyOf: [['s3:CreateBucket', 's3:DeleteBucket']] },
};

/** The known actions an Action entry names: itself, or those a trailing-`*` pattern (`s3:*`, `s3:Get*`) matches. */
function expandAction(action: unknown): string[] {
  if (typeof action !== 'string') throw new InvalidInputError(`unsupported Action ${String(action)}`);
  if (Object.hasOwn(IAM_ACTIONS, action)) return [action];
  const star = action.indexOf('*');
  if (action.startsWith('s3:') && star === action.length - 1) {
    const matched = Object.keys(IAM_ACTIONS).filter((a) => a.startsWith(action.slice(0, -1)));
    if (matched.length > 0) return matched;
  }
  throw new InvalidInputError(`unsupported Action ${action}`);
}

const S3_ARN = 'arn:aws:s3:::';

/** A Resource as the grants it can name: a bucket (bucket actions), a key space (object actions), or both (`*`). */
interface ResourceMatch {
  bucket: string;
  /** Object ARNs: the key prefix (`key*`) or the one key (`key`, exact). */
  objects?: { prefix: string; exact: boolean };
  /** Bucket ARNs (and `*`, which also matches every bucket). */
  bucketLevel: boolean;
}

/**
 * `*` / `arn:aws:s3:::*` (every bucket and object), `arn:aws:s3:::bucket` (the bucket only), `arn:aws:s3:::bucket/*`,
 * `arn:aws:s3:::bucket/prefix*` (objects under a prefix) or `arn:aws:s3:::bucket/key` (that one object).
 */
function resourceOf(resource: unknown): ResourceMatch {
  if (resource === '*' || resource === `${S3_ARN}*`) return { bucket: '*', objects: { prefix: '', exact: false }, bucketLevel: true };
  if (typeof resource !== 'string' || !resource.startsWith(S3_ARN)) throw new InvalidInputError(`unsupported Resource ${String(resource)}`);
  const rest = resource.slice(S3_ARN.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (bucket === '' || /[*?$]/.test(bucket)) throw new InvalidInputError(`unsupported wildcard in Resource ${resource}`);
  if (slash < 0) return { bucket, bucketLevel: true };
  let key = rest.slice(slash + 1);
  const wildcard = key.endsWith('*');
  if (wildcard) key = key.slice(0, -1);
  // Only a trailing `*` has a meaning here; anything else would silently grant something other than what was written.
  if (/[*?]|\$\{/.test(key)) throw new InvalidInputError(`unsupported wildcard or variable in Resource ${resource}`);
  if (!wildcard && key === '') throw new InvalidInputError(`Resource ${resource} names no object`);
  return { bucket, objects: { prefix: key, exact: !wildcard }, bucketLevel: false };
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/** The grants one Allow statement amounts to: each family paired only with the resources of its action's type. */
function statementGrants(s: Record<string, unknown>): ScopeGrant[] {
  const allowed = new Set(list(s.Action).flatMap(expandAction));
  const families = { object: [] as Family[], bucket: [] as Family[] };
  for (const [family, need] of Object.entries(FAMILY_ACTIONS) as Array<[Family, { level: ArnLevel; anyOf: string[][] }]>) {
    if (need.anyOf.some((set) => set.every((a) => allowed.has(a)))) families[need.level].push(family);
  }
  const grants: ScopeGrant[] = [];
  for (const resource of list(s.Resource)) {
    const r = resourceOf(resource);
    if (r.bucketLevel && families.bucket.length > 0) grants.push({ families: [...families.bucket], bucket: r.bucket });
    if (r.objects && families.object.length > 0) {
      grants.push(normalizeGrant({ families: [...families.object], bucket: r.bucket, prefix: r.objects.prefix, exact: r.objects.exact }));
    }
  }
  return grants;
}

/**
 * Grants from a session policy: either Anvil's `{"scopes": [grant…]}` (every field kept: prefix, exact, namespaces,
 * relations) or an IAM document whose statements all Allow known s3 actions on s3 ARNs. Deny statements,
 * conditions, NotAction/NotResource and other wildcards are refused rather than approximated.
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
    if (Object.keys(d).length !== 1) throw new InvalidInputError('a scopes session policy holds only "scopes"');
    const invalid = invalidGrantReason(d.scopes);
    if (invalid !== undefined) throw new InvalidInputError(invalid);
    return (d.scopes as ScopeGrant[]).map(normalizeGrant);
  }
  if (!('Statement' in d)) throw new InvalidInputError('the session policy needs Statement or scopes');
  const unknownTop = Object.keys(d).find((k) => !['Version', 'Id', 'Statement'].includes(k));
  if (unknownTop !== undefined) throw new InvalidInputError(`unsupported policy field ${unknownTop}`);
  const grants: ScopeGrant[] = [];
  for (const statement of list(d.Statement)) {
    if (statement === null || typeof statement !== 'object' || Array.isArray(statement)) throw new InvalidInputError('each Statement must be an object');
    const s = statement as Record<string, unknown>;
    if (s.Effect !== 'Allow') throw new InvalidInputError('only Effect "Allow" statements are supported');
    const unknownField = Object.keys(s).find((k) => !['Sid', 'Effect', 'Action', 'Resource'].includes(k));
    if (unknownField !== undefined) throw new InvalidInputError(`unsupported Statement field ${unknownField}`);
    if (s.Action === undefined || s.Resource === undefined) throw new InvalidInputError('each Statement needs Action and Resource');
    grants.push(...statementGrants(s));
  }
  return grants;
}
