/**
 * The admin API's bodies declared as zod schemas, by route action: the dispatcher parses every body against its
 * route's schema before the handler runs, so a field of the wrong type (a list where a string belongs, an object
 * posing as an id) or an unknown field is a 400 naming the field, never a 500 from deep inside a handler. Routes
 * absent here take no body. Handlers keep their own semantic checks (reserved prefixes, tenants, authority).
 */
import { z } from 'zod';
import { FAMILIES } from '../../policy/index.ts';
import { invalidInput } from './errors.ts';

/** An optional field: absent, or null as absent (as every handler reads it). */
const opt = <T extends z.ZodType>(schema: T) => schema.nullish();

/** Text without control characters (which no name, id, URL or reason needs, and XML answers cannot carry). */
const text = z.string().regex(/^[^\u0000-\u001F\u007F]*$/, 'must not contain control characters');
const name = text.min(1).max(1024);
const longText = z.string().max(1024 * 1024);
const names = z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a name'));
const count = z.number().int().nonnegative();
const time = z.string();

/** One scope grant, strictly: a misspelt field is refused rather than dropped. */
const grant = z.strictObject({
  families: z.array(z.enum(FAMILIES)).min(1),
  bucket: name,
  prefix: opt(z.string().max(1024)),
  exact: opt(z.boolean()),
  namespaces: opt(names),
  relations: opt(names),
});
const grants = z.array(grant);

/** A relationship tuple, as text (`type:id#relation@subject`) or its JSON form (checked by tupleFromJson). */
const tuple = z.union([z.string(), z.record(z.string(), z.unknown())]);

/** A precondition filter: every field a string when present, as the store compares them. */
const filter = z.strictObject({
  resourceType: name,
  resourceId: z.string().optional(),
  relation: z.string().optional(),
  subjectType: z.string().optional(),
  subjectId: z.string().optional(),
  subjectRelation: z.string().optional(),
});

/** Request facts for checks: `now` as an ISO time, the rest JSON values the caveats declare. */
const context = z.record(z.string(), z.unknown()).refine((c) => c.now === undefined || typeof c.now === 'string', '"now" must be an ISO 8601 time');

const tenant = { tenant: opt(name) };

/** Body schemas by route action (AdminRoute.action). */
export const ADMIN_BODIES: Record<string, z.ZodObject> = {
  'Admin:CreateTenant': z.strictObject({ name, description: opt(text.max(4096)) }),
  'Admin:LockdownTenant': z.strictObject({ reason: name }),
  'Admin:LiftTenantLockdown': z.strictObject({ reason: name }),
  'Admin:CreateCredential': z.strictObject({ ...tenant, name, description: opt(text.max(4096)), scopes: grants, expiresAt: opt(time) }),
  'Admin:RotateCredential': z.strictObject({ graceSeconds: opt(count) }),
  'Admin:AssignBucket': z.strictObject({ tenant: name, reassign: opt(z.boolean()) }),
  'Admin:PutRole': z.strictObject({
    ...tenant, name, description: opt(text.max(4096)), scopes: grants, maxDurationSeconds: opt(count), trust: opt(z.array(name)), replace: opt(z.boolean()),
  }),
  'Admin:AddOidcProvider': z.strictObject({ ...tenant, issuer: name, audience: name, jwks: name, algorithms: opt(z.array(name)), roles: z.array(name) }),
  'Admin:RotateSigningKey': z.strictObject({ graceSeconds: opt(count) }),
  'Admin:MintCapability': z.strictObject({
    ...tenant, bucket: name, prefix: opt(z.string().max(1024)), exact: opt(z.boolean()), actions: opt(z.array(name)), expiresAt: opt(time),
  }),
  'Admin:ResetCapabilities': z.strictObject(tenant),
  'Admin:PutBucketGovernance': z.strictObject({ governed: z.boolean() }),
  'Admin:WriteSchema': z.strictObject({ ...tenant, schema: longText, reason: name }),
  'Admin:DiffSchema': z.strictObject({ ...tenant, schema: longText }),
  'Admin:WriteTuples': z.strictObject({
    ...tenant,
    updates: z.array(z.strictObject({ op: z.enum(['create', 'touch', 'delete']), tuple })).min(1),
    preconditions: opt(z.array(z.strictObject({ op: z.enum(['must_exist', 'must_not_exist']), filter }))),
    reason: name,
  }),
  'Admin:ImportTuples': z.strictObject({ ...tenant, text: longText, name: opt(name), reason: name }),
  'Admin:RestoreTuples': z.strictObject({ ...tenant, text: longText, name: opt(name), reason: name }),
  'Admin:Check': z.strictObject({ ...tenant, resource: name, permission: name, subject: name, context: opt(context), explain: opt(z.boolean()) }),
  // Root names a tenant, or '' (or none) for every tenant.
  'Admin:RunAuditCheck': z.strictObject({
    tenant: opt(text.max(1024)), days: opt(count), keyAgeDays: opt(count), maxAddresses: opt(count), maxAgents: opt(count), sinceLast: opt(z.boolean()),
  }),
  'Admin:PruneLeftoverTuples': z.strictObject({ ...tenant, reason: name }),
  'Admin:LookupResources': z.strictObject({
    ...tenant, resourceType: name, permission: name, subject: name, idPrefix: opt(z.string().max(4096)), limit: opt(count), context: opt(context),
  }),
};

const EMPTY = z.strictObject({});

/** The body of a request to `action`, validated; InvalidInput (400) naming the first field that is wrong. */
export function parseAdminBody(action: string, body: Record<string, unknown>): Record<string, unknown> {
  const schema = ADMIN_BODIES[action] ?? EMPTY;
  // A typo is named as such before anything else (a misspelt required field would otherwise read as missing).
  const fields = Object.keys(schema.shape);
  const unknown = Object.keys(body).find((k) => !fields.includes(k));
  if (unknown !== undefined) throw invalidInput(`unknown field "${unknown}" (expected ${fields.join(', ') || 'no body'})`);
  const parsed = schema.safeParse(body);
  if (parsed.success) return body;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length > 0 ? `"${issue.path.join('.')}"` : 'the body';
  throw invalidInput(`${field}: ${issue.message}`);
}
