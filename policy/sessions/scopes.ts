/**
 * Narrowing for temporary credentials: the intersection of two grant lists (a session never exceeds its parent or
 * its role), and session policies — IAM-style JSON or Anvil's own grant list — mapped onto grants.
 */
import { parseDocument } from 'yaml';
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
 * Each family as the IAM actions its operations need, each operation the one action AWS documents for it (Service
 * Authorization Reference, "Actions, resources, and condition keys for Amazon S3", and each operation's Permissions
 * section in the S3 API Reference): object:read = GetObject and HeadObject (s3:GetObject), GetObjectTagging,
 * GetObjectAttributes; object:write = PutObject, PostObject, CopyObject, CreateMultipartUpload, UploadPart,
 * UploadPartCopy, CompleteMultipartUpload (s3:PutObject), PutObjectTagging, DeleteObjectTagging,
 * AbortMultipartUpload, ListParts (s3:ListMultipartUploadParts); object:delete = DeleteObject, DeleteObjects
 * (s3:DeleteObject); object:list = ListObjects(V2) (s3:ListBucket), ListObjectVersions (s3:ListBucketVersions),
 * ListMultipartUploads (s3:ListBucketMultipartUploads); bucket:read = ListBuckets (s3:ListAllMyBuckets),
 * GetBucketLocation, GetBucketVersioning, HeadBucket (s3:ListBucket), GetBucketTagging, GetBucketCors
 * (s3:GetBucketCORS); bucket:admin = CreateBucket, DeleteBucket, Put/DeleteBucketTagging (s3:PutBucketTagging),
 * Put/DeleteBucketCors (s3:PutBucketCORS). A family is the smallest unit a grant can carry, so a statement grants it
 * only when it allows every one of these actions; test/session-policy-actions.test.ts derives the same sets from
 * gateway/routes.ts, so a new operation cannot slip into a family unnoticed.
 */
export const FAMILY_IAM_ACTIONS: Partial<Record<Family, { level: ArnLevel; actions: readonly string[] }>> = {
  'object:read': { level: 'object', actions: ['s3:GetObject', 's3:GetObjectAttributes', 's3:GetObjectTagging'] },
  'object:write': {
    level: 'object',
    actions: ['s3:AbortMultipartUpload', 's3:DeleteObjectTagging', 's3:ListMultipartUploadParts', 's3:PutObject', 's3:PutObjectTagging'],
  },
  'object:delete': { level: 'object', actions: ['s3:DeleteObject'] },
  'object:list': { level: 'bucket', actions: ['s3:ListBucket', 's3:ListBucketMultipartUploads', 's3:ListBucketVersions'] },
  'bucket:read': {
    level: 'bucket',
    actions: ['s3:GetBucketCORS', 's3:GetBucketLocation', 's3:GetBucketTagging', 's3:GetBucketVersioning', 's3:ListAllMyBuckets', 's3:ListBucket'],
  },
  'bucket:admin': { level: 'bucket', actions: ['s3:CreateBucket', 's3:DeleteBucket', 's3:PutBucketCORS', 's3:PutBucketTagging'] },
};

const familyEntries = () => Object.entries(FAMILY_IAM_ACTIONS) as Array<[Family, { level: ArnLevel; actions: readonly string[] }]>;

/** Every IAM action the session-policy mapper knows (case as AWS spells it), with its resource type. */
export const IAM_ACTIONS: ReadonlyMap<string, ArnLevel> = new Map(
  Object.values(FAMILY_IAM_ACTIONS).flatMap((f) => f.actions.map((a) => [a, f.level] as const)),
);

/**
 * The known actions an Action entry names: itself (IAM action names are case-insensitive), or every one for `s3:*`.
 * Any other wildcard is refused: `s3:Get*` would also name actions this gateway does not know, so no grant could
 * stand for it exactly.
 */
function expandAction(action: unknown): string[] {
  if (typeof action !== 'string') throw new InvalidInputError(`unsupported Action ${String(action)}`);
  if (action === 's3:*' || action === '*') return [...IAM_ACTIONS.keys()];
  if (/[*?]/.test(action)) throw new InvalidInputError(`unsupported wildcard in Action ${action}: name each action (or s3:*)`);
  const known = [...IAM_ACTIONS.keys()].find((a) => a.toLowerCase() === action.toLowerCase());
  if (known === undefined) throw new InvalidInputError(`unsupported Action ${action}`);
  return [known];
}

/**
 * The families a statement's actions grant. Every action must lie in a family the statement allows whole: one that
 * is only part of a family (s3:PutObjectTagging without the rest of object:write) can be neither granted exactly nor
 * widened to the family, so it is refused, naming what its family also needs.
 */
function familiesOf(allowed: Set<string>): { object: Family[]; bucket: Family[] } {
  const families = { object: [] as Family[], bucket: [] as Family[] };
  const covered = new Set<string>();
  for (const [family, need] of familyEntries()) {
    if (!need.actions.every((a) => allowed.has(a))) continue;
    families[need.level].push(family);
    for (const a of need.actions) covered.add(a);
  }
  const partial = [...allowed].find((a) => !covered.has(a));
  if (partial !== undefined) {
    const [family, need] = familyEntries().find(([, f]) => f.actions.includes(partial))!;
    const missing = need.actions.filter((a) => !allowed.has(a));
    throw new InvalidInputError(`Action ${partial} cannot be granted exactly: it is part of ${family}, which also allows ${missing.join(', ')}; name them too in the same statement`);
  }
  return families;
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
  const families = familiesOf(new Set(list(s.Action).flatMap(expandAction)));
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
  // JSON.parse keeps the last of duplicated keys ("Resource" twice): IAM refuses such a document, and so does this.
  // YAML's parser (JSON is YAML) reports duplicated keys at any depth.
  const duplicated = parseDocument(policy, { uniqueKeys: true }).errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (duplicated) throw new InvalidInputError(`the session policy has a duplicated key: ${duplicated.message.split('\n')[0]}`);
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
  // The same well-formedness as the Anvil form: an ARN naming no possible bucket (`arn:aws:s3:::d/*`) is refused,
  // never a grant of nothing.
  const invalid = invalidGrantReason(grants);
  if (invalid !== undefined) throw new InvalidInputError(invalid);
  return grants;
}
