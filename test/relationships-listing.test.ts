/**
 * A relationship-filtered listing over HTTP through a real gateway, against the per-key decision: for a caller who
 * may read a scattered part of a governed bucket (direct readers, folder readers with exclusions, caveats on the
 * client's address, group memberships, tuples expiring mid-test), every ListObjectsV2 and ListObjects page shows
 * exactly the keys a HeadObject of each key allows, with KeyCount, IsTruncated and the markers over those only.
 */
import { CreateBucketCommand, HeadObjectCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import test, { type ExecutionContext } from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { seeded } from './helpers/seeded.ts';

const BUCKET = 'scattered';
const TENANT = 'acme';
const AUDIT = { actor: 'test', reason: 'test setup' };
const FAMILIES = ['object:read', 'object:list', 'bucket:read'] as const;

/** Objects read by `(reader + parent->read) - banned`, so no folder grant settles a subtree and every key is checked. */
const SCHEMA = `use expiration
definition user {}
definition app {}
definition group {
  relation member: user | app | group#member | app with expiration
}
definition bucket {
  relation reader: user | app | group#member
  permission read = reader
}
definition folder {
  relation parent: bucket | folder
  relation reader: user | app | group#member | app with ip_allowlist
  relation banned: app | group#member
  permission read = (reader + parent->read) - banned
}
definition object {
  relation parent: folder | bucket
  relation reader: user | app | group#member | app with ip_allowlist | app with expiration
  relation banned: app | group#member | app with expiration
  permission read = (reader + parent->read) - banned
}
caveat ip_allowlist(client_ip ipaddress, allowed list<string>) { allowed.exists(cidr, client_ip.in_cidr(cidr)) }
`;


/** Every page of a listing by `s3`; each page's KeyCount, fullness and IsTruncated are checked as it arrives. */
async function listAll(t: ExecutionContext, s3: S3Client, version: 1 | 2, MaxKeys: number): Promise<string[]> {
  const names: string[] = [];
  let token: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    if (version === 2) {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys, ContinuationToken: token }));
      const here = (page.Contents ?? []).map((c) => c.Key!);
      t.is(page.KeyCount, here.length);
      if (page.IsTruncated) t.is(here.length, MaxKeys, 'a truncated page is full');
      names.push(...here);
      if (!page.IsTruncated) return names;
      token = page.NextContinuationToken;
    } else {
      const page = await s3.send(new ListObjectsCommand({ Bucket: BUCKET, MaxKeys, Marker: token }));
      const here = (page.Contents ?? []).map((c) => c.Key!);
      if (page.IsTruncated) t.is(here.length, MaxKeys, 'a truncated page is full');
      names.push(...here);
      if (!page.IsTruncated) return names;
      token = here[here.length - 1];
    }
  }
  throw new Error('listing did not end');
}

test('a filtered listing shows exactly the keys each per-key check allows, page by page, before and after tuples expire', async (t) => {
  const tg = await startTestGateway();
  t.teardown(() => tg.close());
  const { gw, s3 } = tg;
  await gw.policy.createTenant({ name: TENANT });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await gw.policy.assignBucket(BUCKET, TENANT, { reassign: true });
  const rand = seeded(16);
  const folders = ['a/', 'a/deep/', 'b/', 'c/', ''];
  const keys = Array.from({ length: 240 }, (_, i) => `${folders[rand(folders.length)]}k${String(i).padStart(3, '0')}`);
  for (let i = 0; i < keys.length; i += 24) await Promise.all(keys.slice(i, i + 24).map((Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }))));
  const made = await gw.policy.createCredential({ tenant: TENANT, name: 'reader', scopes: [{ families: [...FAMILIES], bucket: BUCKET }] });
  const creds = { accessKeyId: made.accessKeyId, secretAccessKey: made.secretKey };
  const me = `app:${creds.accessKeyId}`;
  await gw.relationships.writeSchema(TENANT, SCHEMA, AUDIT);
  await gw.policy.setBucketGoverned(BUCKET, true);
  // Soon enough to wait for, late enough that the first round (a few seconds even on a loaded machine) sees them live.
  const soon = new Date(Math.ceil((Date.now() + 20_000) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const tuples = new Set<string>([
    `group:team#member@${me}`,
    `group:brief#member@${me}[expiration:${soon}]`,
    `folder:${BUCKET}/a/#reader@${me}`,
    `folder:${BUCKET}/a/deep/#banned@group:team#member`,
    `folder:${BUCKET}/c/#reader@${me}[ip_allowlist:{"allowed":["10.0.0.0/8"]}]`,
  ]);
  for (const key of keys) {
    const object = `object:${BUCKET}/${key}`;
    switch (rand(12)) {
      case 0: tuples.add(`${object}#reader@${me}`); break;
      case 1: tuples.add(`${object}#reader@group:team#member`); break;
      case 2: tuples.add(`${object}#reader@group:brief#member`); break;
      case 3: tuples.add(`${object}#reader@${me}[ip_allowlist:{"allowed":["127.0.0.0/8"]}]`); break;
      case 4: tuples.add(`${object}#reader@${me}[expiration:${soon}]`); break;
      case 5: tuples.add(`${object}#banned@${me}[expiration:${soon}]`); break;
      case 6: tuples.add(`${object}#reader@app:someone-else`); break;
      default: break;
    }
  }
  await gw.relationships.write(TENANT, [...tuples].map((tuple) => ({ op: 'touch' as const, tuple })), AUDIT);
  const reader = tg.client(creds);

  const compare = async (when: string) => {
    const allowed: string[] = [];
    for (const Key of [...keys].sort()) {
      try {
        await reader.send(new HeadObjectCommand({ Bucket: BUCKET, Key }));
        allowed.push(Key);
      } catch (e) {
        t.is((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 403, `${when}: HeadObject ${Key}`);
      }
    }
    for (const [version, MaxKeys] of [[2, 1000], [2, 7], [1, 13]] as const) {
      const got = await listAll(t, reader, version, MaxKeys);
      t.deepEqual(got, allowed, `${when}: ListObjects v${version}, MaxKeys ${MaxKeys}`);
    }
    return allowed;
  };
  const before = await compare('before expiry');
  t.true(Date.now() < Date.parse(soon), 'the first round ended before the tuples expired (else it compared a moving target)');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(soon) - Date.now()) + 200));
  const after = await compare('after expiry');
  // The generator must leave some keys on each side of every kind of change.
  t.true(before.length > 20 && before.length < keys.length - 20, `${before.length} readable of ${keys.length}`);
  t.notDeepEqual(before, after, 'expiring readers and exclusions changed what shows');
});
