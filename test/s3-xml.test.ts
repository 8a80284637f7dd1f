/**
 * S3's XML both ways, on the embedded store and over MinIO: character references in request bodies decode exactly
 * (the SDK escapes CR and LF in keys, rclone sends part ETags as &#34;…&#34;), response documents escape what XML
 * would normalise or reject so every key lists as itself, and hostile documents (DOCTYPE, entities, deep nesting,
 * too many elements) are a 400 MalformedXML that changes nothing — never expanded, never a 500.
 * Expected answers: S3 API reference, DeleteObjects ("XML related object key constraints"), ListObjectsV2
 * (encoding-type), CompleteMultipartUpload; Error Responses (MalformedXML, 400).
 */
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { errorCode, signedSend } from './helpers/raw.ts';

const test = anyTest as TestFn<unknown>;
const md5b64 = (s: string | Buffer) => createHash('md5').update(s).digest('base64');

async function freshBucket(f: Flavour): Promise<string> {
  const bucket = `xml-${randomBytes(4).toString('hex')}`;
  await f.gw.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function keysOf(f: Flavour, bucket: string): Promise<string[]> {
  const out = await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

/** POST ?delete with a hand-written body (Content-MD5 as S3 requires). */
function rawDelete(f: Flavour, bucket: string, body: string) {
  return signedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}`, query: { delete: '' }, headers: { 'content-md5': md5b64(body), 'content-type': 'application/xml' }, body });
}

async function assertStillThere(t: ExecutionContext, f: Flavour, bucket: string, key: string): Promise<void> {
  const head = await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  t.is(head.ContentLength, 1);
}

onEachBackend(test, 's3-xml', (it, flavour) => {
  it('SDK DeleteObjects deletes keys with CR, LF, quotes and markup (escaped as references)', async (t, f) => {
    const bucket = await freshBucket(f);
    const keys = ["it's", 'line\nbreak', 'cr\rkey', 'both\r\nends', 'quote"d', 'amp&<lt>', 'tab\tkey'];
    for (const Key of keys) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    t.deepEqual((await keysOf(f, bucket)).sort(), [...keys].sort());
    const out = await f.gw.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    t.deepEqual((out.Deleted ?? []).map((d) => d.Key).sort(), [...keys].sort());
    t.deepEqual(out.Errors ?? [], []);
    t.deepEqual(await keysOf(f, bucket), []);
  });

  it('numeric references in a raw DeleteObjects body name the key they spell', async (t, f) => {
    const bucket = await freshBucket(f);
    for (const Key of ["it's", 'a"b', 'nl\nkey']) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    const body = '<Delete><Object><Key>it&#39;s</Key></Object><Object><Key>a&#x22;b</Key></Object><Object><Key>nl&#x0A;key</Key></Object></Delete>';
    const res = await rawDelete(f, bucket, body);
    t.is(res.status, 200, res.body);
    t.deepEqual(await keysOf(f, bucket), []);
  });

  it('listings return a key with CR as itself, and url-encode what XML 1.0 cannot carry', async (t, f) => {
    const bucket = await freshBucket(f);
    const keys = ['cr\rkey', 'ctl\x01key', 'uni\u00e9\u4e16key'];
    for (const Key of keys) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    const plain = await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    t.true(plain.Contents!.some((o) => o.Key === 'cr\rkey'), JSON.stringify(plain.Contents!.map((o) => o.Key)));
    const raw = await signedSend({ url: f.gw.gw.url, method: 'GET', path: `/${bucket}`, query: { 'list-type': '2' } });
    t.true(raw.body.includes('<Key>cr&#13;key</Key>'), raw.body);
    t.false(raw.body.includes('\r'));
    const encoded = await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url' }));
    t.deepEqual(encoded.Contents!.map((o) => decodeURIComponent(o.Key!)).sort(), [...keys].sort());
  });

  it('keys with control characters round-trip: list emits references, DeleteObjects accepts them back', async (t, f) => {
    const bucket = await freshBucket(f);
    // MinIO refuses NUL in object names (XMinioInvalidObjectName); the embedded store keeps it.
    const keys = ['ctl\x01key', 'cr\rkey', 'esc\x1bkey', 'keep', ...(f.name === 'embedded' ? ['nul\x00key'] : [])];
    for (const Key of keys) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    const raw = await signedSend({ url: f.gw.gw.url, method: 'GET', path: `/${bucket}`, query: { 'list-type': '2' } });
    t.is(raw.status, 200, raw.body);
    const listed = [...raw.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!).filter((k) => k !== 'keep');
    t.deepEqual(listed.sort(), ['cr&#13;key', 'ctl&#1;key', 'esc&#27;key', ...(f.name === 'embedded' ? ['nul&#0;key'] : [])]);
    // Exactly as listed (decimal), then the hex spelling of the same references.
    const byList = `<Delete>${listed.slice(0, 2).map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
    t.is((await rawDelete(f, bucket, byList)).status, 200);
    const byHex = `<Delete><Object><Key>esc&#x1B;key</Key></Object>${f.name === 'embedded' ? '<Object><Key>nul&#x0;key</Key></Object>' : ''}</Delete>`;
    const res = await rawDelete(f, bucket, byHex);
    t.is(res.status, 200, res.body);
    t.false(res.body.includes('<Error>'), res.body);
    t.deepEqual(await keysOf(f, bucket), ['keep']);
    // A reference to a lone surrogate decodes but names no valid key: a per-key error, not a 500.
    const lone = await rawDelete(f, bucket, '<Delete><Object><Key>a&#xD800;b</Key></Object></Delete>');
    t.is(lone.status, 200, lone.body);
    t.true(lone.body.includes('<Code>InvalidArgument</Code>'), lone.body);
  });

  // Over an upstream the gateway lists with encoding-type=url and decodes, so the upstream's XML never has to carry them.
  it('keys with characters XML 1.0 cannot carry, spaces and pluses list as themselves, also as common prefixes', async (t, f) => {
    const bucket = await freshBucket(f);
    const keys = ['dir\x01/x', 'esc\x1b', 'sp ace+plus%25', 'v\x0bt\x0c'];
    for (const Key of keys) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    const all = await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url' }));
    t.deepEqual(all.Contents!.map((o) => decodeURIComponent(o.Key!)).sort(), [...keys].sort());
    const top = await f.gw.s3.send(new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url', Delimiter: '/' }));
    t.deepEqual(top.CommonPrefixes!.map((p) => decodeURIComponent(p.Prefix!)), ['dir\x01/']);
    const deleted = await f.gw.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    t.is(deleted.Deleted?.length, keys.length);
    t.deepEqual(await keysOf(f, bucket), []);
  });

  it('a Complete body with part ETags as &#34;…&#34; (rclone) completes', async (t, f) => {
    const bucket = await freshBucket(f);
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'rc' }));
    const part = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'rc', UploadId: up.UploadId, PartNumber: 1, Body: 'hello' }));
    const etag = part.ETag!.replace(/"/g, '');
    const body = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&#34;${etag}&#34;</ETag></Part></CompleteMultipartUpload>`;
    const res = await signedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}/rc`, query: { uploadId: up.UploadId! }, body });
    t.is(res.status, 200, res.body);
    t.is((await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'rc' }))).ContentLength, 5);
  });

  // Tag data type: letters, numbers, spaces and + - = . _ : / @ only; anything else is InvalidTag.
  it('tags decode references, and markup characters are InvalidTag', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 't', Body: 'x' }));
    const body = '<Tagging><TagSet><Tag><Key>k&#x65;y</Key><Value>a b+c=d:e/f@g_h.&#x41;&#66;</Value></Tag></TagSet></Tagging>';
    const put = await signedSend({ url: f.gw.gw.url, method: 'PUT', path: `/${bucket}/t`, query: { tagging: '' }, body });
    t.is(put.status, 200, put.body);
    const tags = await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 't' }));
    t.deepEqual(tags.TagSet, [{ Key: 'key', Value: 'a b+c=d:e/f@g_h.AB' }]);
    const bad = await t.throwsAsync(f.gw.s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 't', Tagging: { TagSet: [{ Key: 'k', Value: 'a<b>' }] } })));
    t.is(bad?.name, 'InvalidTag');
  });

  // MinIO keeps ASCII tags only: a tag it refuses is the client's InvalidTag, as MinIO says, never InvalidRequest.
  it('a non-ASCII tag is kept where the store can keep it, and refused as InvalidTag where it cannot', async (t, f) => {
    const bucket = await freshBucket(f);
    await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 't', Body: 'x', Tagging: 'a=1' }));
    const tagging = { TagSet: [{ Key: 'clé', Value: 'été' }] };
    const put = f.gw.s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 't', Tagging: tagging }));
    const withObject = f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'u', Body: 'x', Tagging: 'cl%C3%A9=%C3%A9t%C3%A9' }));
    if (flavour === 'embedded') {
      await put;
      await withObject;
      t.deepEqual((await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 't' }))).TagSet, tagging.TagSet);
      t.deepEqual((await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'u' }))).TagSet, tagging.TagSet);
      return;
    }
    const refused = await t.throwsAsync(put);
    t.is(refused?.name, 'InvalidTag');
    t.is((refused as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 400);
    t.is((await t.throwsAsync(withObject))?.name, 'InvalidTag');
    t.deepEqual((await f.gw.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 't' }))).TagSet, [{ Key: 'a', Value: '1' }], 'the old tags stay');
    t.is((await t.throwsAsync(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'u' }))))?.name, 'NotFound', 'nothing stored');
  });

  it('hostile documents are 400 MalformedXML, never expanded, and delete nothing', async (t, f) => {
    const bucket = await freshBucket(f);
    for (const Key of ['victim', 'secret']) await f.gw.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    const laughs = Array.from({ length: 10 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('');
    const bodies: Record<string, string> = {
      'internal entity spelling a key': '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY k "victim">]><Delete><Object><Key>&k;</Key></Object></Delete>',
      'quadratic blow-up': `<!DOCTYPE d [<!ENTITY a "${'x'.repeat(50_000)}">]><Delete><Object><Key>${'&a;'.repeat(2000)}</Key></Object></Delete>`,
      'billion laughs': `<!DOCTYPE d [<!ENTITY l0 "lol">${laughs}]><Delete><Object><Key>&l10;</Key></Object></Delete>`,
      'external entity': '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>',
      'parameter entity': '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x"> %p;]><Delete><Object><Key>victim</Key></Object></Delete>',
      'undeclared entity': '<Delete><Object><Key>vic&tim;</Key></Object></Delete>',
      'reference out of Unicode': '<Delete><Object><Key>vic&#x110000;tim</Key></Object></Delete>',
      '100k-deep nesting': `<Delete>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</Delete>`,
      'more than 1000 keys': `<Delete>${'<Object><Key>k</Key></Object>'.repeat(1001)}</Delete>`,
      'not XML': 'victim',
      'another root': '<Remove><Object><Key>victim</Key></Object></Remove>',
      'a body over the operation\'s size bound': `<Delete><Object><Key>victim</Key></Object><!--${'x'.repeat(3 * 1024 * 1024)}--></Delete>`,
    };
    for (const [name, body] of Object.entries(bodies)) {
      const res = await rawDelete(f, bucket, body);
      t.is(res.status, 400, `${name}: ${res.body.slice(0, 300)}`);
      t.is(errorCode(res), 'MalformedXML', name);
      t.truthy(res.headers['x-amz-request-id'], name);
      t.false(res.body.includes('at '), `${name}: no stack trace`);
    }
    await assertStillThere(t, f, bucket, 'victim');
    await assertStillThere(t, f, bucket, 'secret');
  });

  it('a Complete with more than 10,000 parts or a DOCTYPE is MalformedXML and completes nothing', async (t, f) => {
    const bucket = await freshBucket(f);
    const up = await f.gw.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'big' }));
    const part = await f.gw.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'big', UploadId: up.UploadId, PartNumber: 1, Body: 'x' }));
    const many = `<CompleteMultipartUpload>${Array.from({ length: 10_001 }, (_, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${part.ETag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const doctype = `<!DOCTYPE c [<!ENTITY e "${part.ETag!.replace(/"/g, '&quot;')}">]><CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>`;
    for (const body of [many, doctype]) {
      const res = await signedSend({ url: f.gw.gw.url, method: 'POST', path: `/${bucket}/big`, query: { uploadId: up.UploadId! }, body });
      t.is(res.status, 400, res.body.slice(0, 300));
      t.is(errorCode(res), 'MalformedXML');
    }
    await t.throwsAsync(f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' })));
    // The upload is still there and completes normally.
    await f.gw.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'big', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    t.is((await f.gw.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }))).ContentLength, 1);
    t.truthy(flavour);
  });
});
