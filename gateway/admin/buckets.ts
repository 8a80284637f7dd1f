/** Admin handlers for bucket ownership: root sees and assigns every bucket; a tenant admin sees its tenant's. */
import { authorizeTenantAdmin, holdsTenantWide, RESERVED_NAME, visibleBuckets } from '../../policy/index.ts';
import { onlyFields, requiredString, type AdminCall } from './call.ts';
import { plausibleBucketName } from '../../storage/bucket-names.ts';
import { invalidInput } from './errors.ts';


/** GET /buckets: bucket names and owning tenants. */
export async function listBuckets(call: AdminCall): Promise<unknown> {
  const { principal, policy } = call;
  // A tenant admin sees its tenant's buckets; one narrower than its tenant, those it holds a grant in (as ListBuckets).
  const tenantBuckets = async (): Promise<string[]> => {
    const names = await policy.listTenantBuckets(principal.tenant);
    return holdsTenantWide(principal) ? names : visibleBuckets(principal, names, () => principal.tenant);
  };
  const owners = principal.isRoot
    ? [...(await policy.bucketOwners())].map(([name, tenant]) => ({ name, tenant }))
    : (await tenantBuckets()).map((name) => ({ name, tenant: principal.tenant }));
  return { buckets: owners.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

/** PUT /buckets/{bucket}/owner {tenant, reassign}: root-only; moving a bucket another tenant owns needs reassign. */
export async function assignBucket(call: AdminCall): Promise<unknown> {
  const { bucket } = call.params;
  call.require(authorizeTenantAdmin(call.principal), { bucket });
  onlyFields(call.body, ['tenant', 'reassign']);
  const tenant = requiredString(call.body, 'tenant');
  const reassign = call.body.reassign ?? false;
  if (typeof reassign !== 'boolean') throw invalidInput('"reassign" must be true or false');
  // Every name S3 has allowed, legacy ones included (buckets adopted from an existing upstream may predate the current
  // rules), and the same shape, with the same answer, as a scope grant's bucket (policy/scopes.ts): a name no bucket
  // can have would only sit in the bucket list.
  if (!plausibleBucketName(bucket!) || bucket === RESERVED_NAME) {
    throw invalidInput(`bucket ${JSON.stringify(bucket)} is not a bucket name (3 to 255 letters, digits, ".", "-" or "_", starting with a letter or digit)`);
  }
  await call.policy.assignBucket(bucket!, tenant, { reassign, actor: call.principal.accessKeyId });
  return { name: bucket, tenant };
}
