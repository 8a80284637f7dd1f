/**
 * Issue 9, follow-up of class 3: a session policy's IAM actions allow exactly the operations AWS documents for them.
 * A family is granted only when a statement allows every action its operations need; an action that is only part of
 * a family, any wildcard but `s3:*`, and a document with duplicated keys are refused (MalformedPolicyDocument).
 */
import { GetBucketTaggingCommand, GetObjectCommand, GetObjectTaggingCommand, PutBucketTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import test from 'ava';
import type { OperationName } from '../gateway/routes.ts';
import { OPERATIONS } from '../gateway/routes.ts';
import { FAMILY_IAM_ACTIONS } from '../policy/index.ts';
import { ok, type Creds } from './helpers/admin.ts';
import { assumeRole, BUCKET, credential, seed, TENANT } from './helpers/authority.ts';
import { ROOT, startTestGateway, type TestGateway } from './helpers/gateway.ts';

/**
 * The one IAM action AWS documents for each operation (S3 API Reference, each operation's Permissions section, and
 * the Service Authorization Reference for Amazon S3). Keyed by OperationName, so a new operation must be added here.
 */
const OPERATION_IAM_ACTION: Record<OperationName, string> = {
  ListBuckets: 's3:ListAllMyBuckets',
  GetBucketLocation: 's3:GetBucketLocation',
  GetBucketVersioning: 's3:GetBucketVersioning',
  HeadBucket: 's3:ListBucket',
  GetBucketTagging: 's3:GetBucketTagging',
  PutBucketTagging: 's3:PutBucketTagging',
  DeleteBucketTagging: 's3:PutBucketTagging',
  GetBucketCors: 's3:GetBucketCORS',
  PutBucketCors: 's3:PutBucketCORS',
  DeleteBucketCors: 's3:PutBucketCORS',
  CreateBucket: 's3:CreateBucket',
  DeleteBucket: 's3:DeleteBucket',
  ListObjects: 's3:ListBucket',
  ListObjectsV2: 's3:ListBucket',
  ListObjectVersions: 's3:ListBucketVersions',
  ListMultipartUploads: 's3:ListBucketMultipartUploads',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  GetObjectTagging: 's3:GetObjectTagging',
  GetObjectAttributes: 's3:GetObjectAttributes',
  PutObject: 's3:PutObject',
  PostObject: 's3:PutObject',
  CopyObject: 's3:PutObject',
  PutObjectTagging: 's3:PutObjectTagging',
  DeleteObjectTagging: 's3:DeleteObjectTagging',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  UploadPartCopy: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  ListParts: 's3:ListMultipartUploadParts',
  DeleteObject: 's3:DeleteObject',
  DeleteObjects: 's3:DeleteObject',
};

test('each family needs exactly the IAM actions of its operations (derived from the routing table)', (t) => {
  const derived = new Map<string, Set<string>>();
  for (const [op, spec] of Object.entries(OPERATIONS)) {
    const set = derived.get(spec.family) ?? new Set<string>();
    set.add(OPERATION_IAM_ACTION[op as OperationName]);
    derived.set(spec.family, set);
  }
  for (const [family, actions] of derived) t.deepEqual([...(FAMILY_IAM_ACTIONS[family as keyof typeof FAMILY_IAM_ACTIONS]?.actions ?? [])].sort(), [...actions].sort(), family);
});

let tg: TestGateway;
let app: Creds;
let roleArn: string;

test.before(async () => {
  tg = await startTestGateway();
  await seed(tg);
  const scopes = [{ families: ['object:read', 'object:write', 'object:list', 'object:delete', 'bucket:read', 'bucket:admin'], bucket: BUCKET }];
  app = await credential(tg, scopes as never);
  roleArn = (await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'all', scopes })).arn;
});
test.after.always(async () => tg?.close());

const doc = (Statement: unknown) => JSON.stringify({ Version: '2012-10-17', Statement });
const OBJECTS = `arn:aws:s3:::${BUCKET}/pub/*`;
const client = (c: Creds) => tg.client(c) as S3Client;

test('wildcards other than s3:*, partial families and duplicated keys are refused, naming the action', async (t) => {
  const refused: Array<[string, RegExp]> = [
    [doc([{ Effect: 'Allow', Action: 's3:Get*', Resource: '*' }]), /s3:Get\*/],
    [doc([{ Effect: 'Allow', Action: 's3:GetObject*', Resource: OBJECTS }]), /s3:GetObject\*/],
    [doc([{ Effect: 'Allow', Action: 's3:PutObject*', Resource: OBJECTS }]), /s3:PutObject\*/],
    [doc([{ Effect: 'Allow', Action: 's3:GetObject', Resource: OBJECTS }]), /s3:GetObject .*object:read.*s3:GetObjectAttributes/],
    [doc([{ Effect: 'Allow', Action: ['s3:CreateBucket', 's3:DeleteBucket'], Resource: `arn:aws:s3:::${BUCKET}` }]), /bucket:admin.*s3:PutBucketCORS/],
    [doc([{ Effect: 'Allow', Action: 's3:PutObjectTagging', Resource: OBJECTS }]), /s3:PutObjectTagging .*object:write/],
    [doc([{ Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${BUCKET}` }]), /s3:ListBucket/],
    [`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"${OBJECTS}","Resource":"*"}]}`, /duplicated key/],
  ];
  for (const [policy, message] of refused) {
    const err = await t.throwsAsync(assumeRole(tg, app, roleArn, policy), { name: 'MalformedPolicyDocumentException' }, policy);
    t.regex(err?.message ?? '', message, policy);
  }
});

test('a whole family allows its operations on its resources, nothing else; s3:* allows what the role does', async (t) => {
  const read = ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectAttributes'];
  const s = client(await assumeRole(tg, app, roleArn, doc([{ Effect: 'Allow', Action: read, Resource: OBJECTS }])));
  await s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'pub/x' }));
  await s.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'pub/x' }));
  await t.throwsAsync(s.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'secret/x' })), { name: 'AccessDenied' });
  await t.throwsAsync(s.send(new GetBucketTaggingCommand({ Bucket: BUCKET })), { name: 'AccessDenied' });
  await t.throwsAsync(s.send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } })), { name: 'AccessDenied' });
  s.destroy();
  const all = client(await assumeRole(tg, app, roleArn, doc([{ Effect: 'Allow', Action: 's3:*', Resource: '*' }])));
  await all.send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }));
  t.is((await all.send(new GetBucketTaggingCommand({ Bucket: BUCKET }))).TagSet?.[0]?.Key, 'a');
  all.destroy();
});
