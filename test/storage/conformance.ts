/**
 * The storage conformance suite: contract behaviour every Backend must show, registered as ava tests against any
 * backend factory. Only the contract is tested here; engine specifics live beside each engine's test file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { ExecutionContext, TestFn } from 'ava';
import { sameBytes } from '../helpers/bytes.ts';
import {
  BadDigestError,
  BucketAlreadyExistsError,
  BucketNotEmptyError,
  EntityTooSmallError,
  IncompleteBodyError,
  InvalidPartError,
  InvalidPartOrderError,
  InvalidRangeError,
  InvalidRequestError,
  MIN_PART_SIZE,
  NoSuchBucketError,
  NoSuchKeyError,
  NoSuchUploadError,
  NotModifiedError,
  PreconditionFailedError,
  type Backend,
  type ListObjectsInput,
  type ListEntry,
  type ObjectWriteMeta,
} from '../../storage/index.ts';

/** A fresh backend for one test, and how to dispose of it. */
export interface BackendHandle {
  backend: Backend;
  cleanup: () => Promise<void>;
  /** Engine-specific leftovers after a failed write (for example temp files); empty means clean. */
  leftovers?: () => Promise<string[]>;
}

/** Creates a backend for one test. */
export type BackendFactory = () => Promise<BackendHandle>;

/** A body stream of exactly these bytes. */
export function bodyOf(data: Buffer | string): Readable {
  return Readable.from([Buffer.from(data)], { objectMode: false });
}

/** Reads a whole stream into memory (tests only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const md5hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const META: ObjectWriteMeta = { headers: { contentType: 'text/plain' }, userMetadata: { color: 'blue' } };

type Ctx = { b: Backend; bucket: string; handle: BackendHandle };

/** Registers the conformance tests under `name` for the backend `makeBackend` creates. */
/**
 * What a backend's underlying store cannot represent. MinIO keeps each object as a directory, so with both "a" and
 * "a/b" stored it lists nothing under "a/" (both stay readable); AWS S3 and the embedded store have no such limit.
 */
export interface BackendLimits {
  /** False when a key that is also a prefix of other keys hides them from listings. */
  keyAlsoPrefix?: boolean;
}

export function conformance(test: TestFn, name: string, makeBackend: BackendFactory, limits: BackendLimits = {}): void {
  const it = (title: string, fn: (t: ExecutionContext, c: Ctx) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => {
      const handle = await makeBackend();
      try {
        const bucket = `conf-${randomBytes(6).toString('hex')}`;
        await handle.backend.createBucket(bucket);
        await fn(t, { b: handle.backend, bucket, handle });
      } finally {
        await handle.cleanup();
      }
    });
  };
  const put = (c: Ctx, key: string, data: Buffer | string, extra: { tags?: Record<string, string>; meta?: ObjectWriteMeta } = {}) =>
    c.b.putObject({ bucket: c.bucket, key, body: bodyOf(data), size: Buffer.byteLength(data), meta: extra.meta ?? META, tags: extra.tags });
  const get = async (c: Ctx, key: string, bucket = c.bucket) => readAll((await c.b.getObject({ bucket, key })).body);
  const names = (entries: ListEntry[]) => entries.map((e) => (e.kind === 'object' ? e.key : `P:${e.prefix}`));
  const list = async (c: Ctx, input: Omit<ListObjectsInput, 'bucket' | 'limit'> & { limit?: number }) => {
    const r = await c.b.listObjects({ bucket: c.bucket, limit: 1000, ...input });
    return { names: names(r.entries), isTruncated: r.isTruncated };
  };
  const assertFailedWriteLeftNothing = async (t: ExecutionContext, c: Ctx, key: string) => {
    await t.throwsAsync(c.b.headObject(c.bucket, key), { instanceOf: NoSuchKeyError });
    if (c.handle.leftovers) t.deepEqual(await c.handle.leftovers(), []);
  };

  it('ping resolves and health reports up while the backend serves', async (t, c) => {
    await c.b.ping();
    await c.b.ping(AbortSignal.timeout(30_000));
    const health = c.b.health();
    t.true(health.up);
    t.true(health.since instanceof Date);
    t.true(health.retryAfterSeconds > 0);
  });

  it('buckets: create, head, list, duplicate, delete', async (t, c) => {
    const info = await c.b.headBucket(c.bucket);
    t.is(info.name, c.bucket);
    t.true((await c.b.listBuckets()).some((x) => x.name === c.bucket));
    await t.throwsAsync(c.b.createBucket(c.bucket), { instanceOf: BucketAlreadyExistsError });
    await c.b.deleteBucket(c.bucket);
    await t.throwsAsync(c.b.headBucket(c.bucket), { instanceOf: NoSuchBucketError });
    await t.throwsAsync(c.b.deleteBucket(c.bucket), { instanceOf: NoSuchBucketError });
    await c.b.createBucket(c.bucket);
  });

  it('put, get, head round-trip metadata and body', async (t, c) => {
    const data = Buffer.from('hello world');
    const meta = await c.b.putObject({
      bucket: c.bucket,
      key: 'dir/hello.txt',
      body: bodyOf(data),
      size: data.length,
      contentMd5: createHash('md5').update(data).digest(),
      meta: { headers: { contentType: 'text/plain', cacheControl: 'no-cache' }, userMetadata: { a: '1', b: 'two' } },
    });
    t.is(meta.etag, md5hex(data));
    t.is(meta.size, data.length);
    const read = await c.b.getObject({ bucket: c.bucket, key: 'dir/hello.txt' });
    sameBytes(t, await readAll(read.body), data);
    t.is(read.range, undefined);
    const head = await c.b.headObject(c.bucket, 'dir/hello.txt');
    t.is(head.etag, md5hex(data));
    t.is(head.key, 'dir/hello.txt');
    t.is(head.headers.contentType, 'text/plain');
    t.is(head.headers.cacheControl, 'no-cache');
    t.deepEqual(head.userMetadata, { a: '1', b: 'two' });
    t.true(Math.abs(head.lastModified.getTime() - Date.now()) < 60_000);
  });

  it('empty objects and missing keys or buckets', async (t, c) => {
    const meta = await put(c, 'empty', '');
    t.is(meta.etag, 'd41d8cd98f00b204e9800998ecf8427e');
    t.is((await get(c, 'empty')).length, 0);
    await t.throwsAsync(c.b.getObject({ bucket: c.bucket, key: 'nope' }), { instanceOf: NoSuchKeyError });
    await t.throwsAsync(c.b.headObject(c.bucket, 'nope'), { instanceOf: NoSuchKeyError });
    await t.throwsAsync(c.b.getObject({ bucket: `${c.bucket}-missing`, key: 'x' }), { instanceOf: NoSuchBucketError });
    await t.throwsAsync(put({ ...c, bucket: `${c.bucket}-missing` }, 'x', 'x'), { instanceOf: NoSuchBucketError });
  });

  it('overwrite replaces body, metadata and tags', async (t, c) => {
    await put(c, 'k', 'first version', { tags: { v: '1' } });
    await put(c, 'k', 'second', { meta: { headers: {}, userMetadata: { new: 'yes' } } });
    t.is((await get(c, 'k')).toString(), 'second');
    const head = await c.b.headObject(c.bucket, 'k');
    t.deepEqual(head.userMetadata, { new: 'yes' });
    t.is(head.size, 6);
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 'k'), {});
    await put(c, 'k', 'third', { tags: { v: '3' } });
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 'k'), { v: '3' });
  });

  it('delete and deleteObjects', async (t, c) => {
    await put(c, 'a', 'a');
    await put(c, 'b', 'b');
    await c.b.deleteObject(c.bucket, 'a');
    await t.throwsAsync(c.b.headObject(c.bucket, 'a'), { instanceOf: NoSuchKeyError });
    await c.b.deleteObject(c.bucket, 'a');
    const res = await c.b.deleteObjects(c.bucket, ['b', 'never']);
    t.deepEqual(res.map((r) => [r.key, r.error]), [['b', undefined], ['never', undefined]]);
    t.deepEqual((await c.b.listObjects({ bucket: c.bucket, limit: 10 })).entries, []);
  });

  it('ranges: bounded, clamped, open, suffix, unsatisfiable', async (t, c) => {
    const data = Buffer.from('0123456789');
    await put(c, 'r', data);
    const range = async (r: Parameters<Backend['getObject']>[0]['range']) => {
      const read = await c.b.getObject({ bucket: c.bucket, key: 'r', range: r });
      return { range: read.range, body: (await readAll(read.body)).toString() };
    };
    t.deepEqual(await range({ kind: 'bounded', start: 2, end: 4 }), { range: { start: 2, end: 4 }, body: '234' });
    t.deepEqual(await range({ kind: 'bounded', start: 8, end: 100 }), { range: { start: 8, end: 9 }, body: '89' });
    t.deepEqual(await range({ kind: 'open', start: 7 }), { range: { start: 7, end: 9 }, body: '789' });
    t.deepEqual(await range({ kind: 'suffix', length: 3 }), { range: { start: 7, end: 9 }, body: '789' });
    t.deepEqual(await range({ kind: 'suffix', length: 50 }), { range: { start: 0, end: 9 }, body: '0123456789' });
    const err = await t.throwsAsync(range({ kind: 'bounded', start: 10, end: 20 }), { instanceOf: InvalidRangeError });
    t.is((err as InvalidRangeError).size, 10);
    await t.throwsAsync(range({ kind: 'open', start: 11 }), { instanceOf: InvalidRangeError });
  });

  it('conditions on get', async (t, c) => {
    const meta = await put(c, 'c', 'conditional');
    const when = meta.lastModified;
    const past = new Date(when.getTime() - 3600_000);
    // Last-Modified itself, not a future date: RFC 7232 lets servers ignore If-Modified-Since dates in the future.
    const same = new Date(when.getTime());
    const get = (conditions: NonNullable<Parameters<Backend['getObject']>[0]['conditions']>) =>
      c.b.getObject({ bucket: c.bucket, key: 'c', conditions }).then((r) => readAll(r.body));
    t.is((await get({ ifMatch: `"${meta.etag}"` })).toString(), 'conditional');
    t.is((await get({ ifMatch: '*' })).toString(), 'conditional');
    await t.throwsAsync(get({ ifMatch: '"0000"' }), { instanceOf: PreconditionFailedError });
    await t.throwsAsync(get({ ifNoneMatch: `"${meta.etag}"` }), { instanceOf: NotModifiedError });
    await t.throwsAsync(get({ ifNoneMatch: '*' }), { instanceOf: NotModifiedError });
    t.truthy(await get({ ifNoneMatch: '"0000"' }));
    await t.throwsAsync(get({ ifModifiedSince: same }), { instanceOf: NotModifiedError });
    t.truthy(await get({ ifModifiedSince: past }));
    await t.throwsAsync(get({ ifUnmodifiedSince: past }), { instanceOf: PreconditionFailedError });
    t.truthy(await get({ ifUnmodifiedSince: same }));
    // S3 precedence: a true If-Match wins over a false If-Unmodified-Since; a false If-None-Match wins over If-Modified-Since.
    t.truthy(await get({ ifMatch: meta.etag, ifUnmodifiedSince: past }));
    t.truthy(await get({ ifNoneMatch: '"0000"', ifModifiedSince: same }));
    // A failing If-Match fails the read (412) whatever If-None-Match or If-Modified-Since say (RFC 9110 §13.2.2).
    await t.throwsAsync(get({ ifMatch: '"0000"', ifNoneMatch: `"${meta.etag}"` }), { instanceOf: PreconditionFailedError });
    await t.throwsAsync(get({ ifMatch: '"0000"', ifModifiedSince: same }), { instanceOf: PreconditionFailedError });
    await t.throwsAsync(get({ ifMatch: `"${meta.etag}"`, ifNoneMatch: `"${meta.etag}"` }), { instanceOf: NotModifiedError });
  });

  it('copy: metadata and tags copied or replaced, source conditions, copy onto itself', async (t, c) => {
    const src = await put(c, 'src', 'copy me', { tags: { t: 'src' } });
    const copied = await c.b.copyObject({ source: { bucket: c.bucket, key: 'src' }, dest: { bucket: c.bucket, key: 'dst' } });
    t.is(copied.etag, src.etag);
    t.is((await get(c, 'dst')).toString(), 'copy me');
    t.deepEqual((await c.b.headObject(c.bucket, 'dst')).userMetadata, META.userMetadata);
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 'dst'), { t: 'src' });

    await c.b.copyObject({
      source: { bucket: c.bucket, key: 'src' },
      dest: { bucket: c.bucket, key: 'dst2' },
      replaceMeta: { headers: { contentType: 'application/x-new' }, userMetadata: { fresh: '1' } },
      replaceTags: { t: 'new' },
    });
    const head = await c.b.headObject(c.bucket, 'dst2');
    t.deepEqual(head.userMetadata, { fresh: '1' });
    t.is(head.headers.contentType, 'application/x-new');
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 'dst2'), { t: 'new' });

    await t.throwsAsync(
      c.b.copyObject({ source: { bucket: c.bucket, key: 'src', conditions: { ifMatch: '"bad"' } }, dest: { bucket: c.bucket, key: 'x' } }),
      { instanceOf: PreconditionFailedError },
    );
    await t.throwsAsync(
      c.b.copyObject({ source: { bucket: c.bucket, key: 'src', conditions: { ifNoneMatch: src.etag } }, dest: { bucket: c.bucket, key: 'x' } }),
      { instanceOf: PreconditionFailedError },
    );
    await t.throwsAsync(c.b.copyObject({ source: { bucket: c.bucket, key: 'missing' }, dest: { bucket: c.bucket, key: 'x' } }), {
      instanceOf: NoSuchKeyError,
    });
    await t.throwsAsync(c.b.headObject(c.bucket, 'x'), { instanceOf: NoSuchKeyError });

    await c.b.copyObject({
      source: { bucket: c.bucket, key: 'src' },
      dest: { bucket: c.bucket, key: 'src' },
      replaceMeta: { headers: {}, userMetadata: { self: 'yes' } },
    });
    t.deepEqual((await c.b.headObject(c.bucket, 'src')).userMetadata, { self: 'yes' });
    t.is((await get(c, 'src')).toString(), 'copy me');

    // The copy is independent of the source's later life.
    await put(c, 'src', 'overwritten');
    await c.b.deleteObject(c.bucket, 'src');
    t.is((await get(c, 'dst')).toString(), 'copy me');
  });

  it('copy across buckets', async (t, c) => {
    const other = `${c.bucket}-b`;
    await c.b.createBucket(other);
    await put(c, 'k', 'across');
    await c.b.copyObject({ source: { bucket: c.bucket, key: 'k' }, dest: { bucket: other, key: 'k2' } });
    t.is((await get(c, 'k2', other)).toString(), 'across');
    await c.b.deleteObject(other, 'k2');
    await c.b.deleteBucket(other);
  });

  it('listing: prefix, delimiter and byte order around "/"', async (t, c) => {
    for (const k of ['a/b', 'a.b', 'a-b', 'a0', 'a/c/d', 'b', 'ab']) await put(c, k, k);
    t.deepEqual((await list(c, {})).names, ['a-b', 'a.b', 'a/b', 'a/c/d', 'a0', 'ab', 'b']);
    t.deepEqual((await list(c, { delimiter: '/' })).names, ['a-b', 'a.b', 'P:a/', 'a0', 'ab', 'b']);
    t.deepEqual((await list(c, { prefix: 'a/', delimiter: '/' })).names, ['a/b', 'P:a/c/']);
    t.deepEqual((await list(c, { prefix: 'a/' })).names, ['a/b', 'a/c/d']);
    t.deepEqual((await list(c, { prefix: 'zz' })).names, []);
    t.deepEqual((await list(c, { prefix: 'a', delimiter: '.' })).names, ['a-b', 'P:a.', 'a/b', 'a/c/d', 'a0', 'ab']);
  });

  if (limits.keyAlsoPrefix !== false) {
    it('listing: a key that is also a prefix of other keys', async (t, c) => {
      for (const k of ['a/b', 'a', 'a/c/d', 'a0']) await put(c, k, k);
      t.deepEqual((await list(c, {})).names, ['a', 'a/b', 'a/c/d', 'a0']);
      t.deepEqual((await list(c, { delimiter: '/' })).names, ['a', 'P:a/', 'a0']);
      t.deepEqual((await list(c, { prefix: 'a/', delimiter: '/' })).names, ['a/b', 'P:a/c/']);
      t.deepEqual((await list(c, { prefix: 'a', delimiter: '.' })).names, ['a', 'a/b', 'a/c/d', 'a0']);
    });
  }

  it('listing: startAfter, resuming from a common prefix, limit counts prefixes', async (t, c) => {
    for (const k of ['a', 'b/1', 'b/2', 'b/3', 'c', 'd/x', 'e']) await put(c, k, k);
    t.deepEqual((await list(c, { startAfter: 'b/2' })).names, ['b/3', 'c', 'd/x', 'e']);
    t.deepEqual((await list(c, { startAfter: 'b/2', delimiter: '/' })).names, ['c', 'P:d/', 'e']);
    t.deepEqual((await list(c, { startAfter: 'b/', delimiter: '/' })).names, ['c', 'P:d/', 'e']);
    t.deepEqual((await list(c, { startAfter: 'b', delimiter: '/' })).names, ['P:b/', 'c', 'P:d/', 'e']);
    t.deepEqual((await list(c, { startAfter: 'a', prefix: 'b/' })).names, ['b/1', 'b/2', 'b/3']);
    t.deepEqual((await list(c, { startAfter: 'zzz' })).names, []);
    t.deepEqual(await list(c, { delimiter: '/', limit: 2 }), { names: ['a', 'P:b/'], isTruncated: true });
    t.deepEqual(await list(c, { delimiter: '/', limit: 2, startAfter: 'b/' }), { names: ['c', 'P:d/'], isTruncated: true });
    t.deepEqual(await list(c, { delimiter: '/', limit: 1, startAfter: 'd/' }), { names: ['e'], isTruncated: false });
    t.deepEqual(await list(c, { delimiter: '/', limit: 5 }), { names: ['a', 'P:b/', 'c', 'P:d/', 'e'], isTruncated: false });
  });

  it('listing: unicode keys in UTF-8 byte order, astral characters included', async (t, c) => {
    // UTF-16 order would put the astral 😀 (D83D…) before U+FFFD and U+E000; UTF-8 byte order puts it after.
    const keys = ['z', 'é', '\u{E000}', '\u{FFFD}', '😀', 'x/😀', 'x/\u{FFFD}'];
    for (const k of keys) await put(c, k, k);
    t.deepEqual((await list(c, {})).names, ['x/\u{FFFD}', 'x/😀', 'z', 'é', '\u{E000}', '\u{FFFD}', '😀']);
    t.deepEqual((await list(c, { startAfter: '\u{FFFD}' })).names, ['😀']);
    t.deepEqual((await list(c, { prefix: 'x/', startAfter: 'x/\u{FFFD}' })).names, ['x/😀']);
    t.is((await get(c, '😀')).toString(), '😀');
  });

  it('listing: 1,200 keys paginated with limit 1000', async (t, c) => {
    const keys = Array.from({ length: 1200 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => put(c, k, 'x')));
    const page1 = await c.b.listObjects({ bucket: c.bucket, limit: 1000 });
    t.is(page1.entries.length, 1000);
    t.true(page1.isTruncated);
    const last = page1.entries[999]!;
    const page2 = await c.b.listObjects({ bucket: c.bucket, limit: 1000, startAfter: last.kind === 'object' ? last.key : '' });
    t.is(page2.entries.length, 200);
    t.false(page2.isTruncated);
    t.deepEqual([...names(page1.entries), ...names(page2.entries)], keys);
    const rolled = await c.b.listObjects({ bucket: c.bucket, limit: 1000, delimiter: '/' });
    t.deepEqual(names(rolled.entries), ['P:k/']);
  });

  it('tagging: put, get, delete, missing key', async (t, c) => {
    await put(c, 't', 'tagged');
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 't'), {});
    await c.b.putObjectTagging(c.bucket, 't', { a: '1', b: '2' });
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 't'), { a: '1', b: '2' });
    await c.b.putObjectTagging(c.bucket, 't', { c: '3' });
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 't'), { c: '3' });
    await c.b.deleteObjectTagging(c.bucket, 't');
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 't'), {});
    await t.throwsAsync(c.b.getObjectTagging(c.bucket, 'nope'), { instanceOf: NoSuchKeyError });
    await t.throwsAsync(c.b.putObjectTagging(c.bucket, 'nope', { a: '1' }), { instanceOf: NoSuchKeyError });
    await c.b.putObjectTagging(c.bucket, 't', { gone: 'soon' });
    await c.b.deleteObject(c.bucket, 't');
    await put(c, 't', 'again');
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 't'), {});
  });

  // S3 refuses to delete a general purpose bucket that holds objects, but not one holding only unfinished uploads:
  // those go with it (only directory buckets refuse them; AbortMultipartUpload API reference).
  it('deleteBucket refuses objects; in-progress uploads go with the bucket', async (t, c) => {
    await put(c, 'o', 'o');
    await t.throwsAsync(c.b.deleteBucket(c.bucket), { instanceOf: BucketNotEmptyError });
    await c.b.deleteObject(c.bucket, 'o');
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'm', meta: META });
    await c.b.uploadPart({ bucket: c.bucket, key: 'm', uploadId: up.uploadId, partNumber: 1, body: bodyOf('part'), size: 4 });
    await c.b.deleteBucket(c.bucket);
    await t.throwsAsync(c.b.headBucket(c.bucket), { instanceOf: NoSuchBucketError });
    await c.b.createBucket(c.bucket);
    const uploads = await c.b.listMultipartUploads({ bucket: c.bucket, limit: 10 });
    t.deepEqual(uploads.entries, []);
    await t.throwsAsync(c.b.listParts({ bucket: c.bucket, key: 'm', uploadId: up.uploadId, limit: 10 }), { instanceOf: NoSuchUploadError });
  });

  it('failed writes store nothing: erroring body, short body, long body, bad Content-MD5', async (t, c) => {
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024, 1));
        setImmediate(() => this.destroy(new Error('client went away')));
      },
    });
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'e', body: failing, size: 1 << 20, meta: META }));
    await assertFailedWriteLeftNothing(t, c, 'e');
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 's', body: bodyOf('short'), size: 10, meta: META }), {
      instanceOf: IncompleteBodyError,
    });
    await assertFailedWriteLeftNothing(t, c, 's');
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'l', body: bodyOf('longer than said'), size: 3, meta: META }), {
      instanceOf: IncompleteBodyError,
    });
    await assertFailedWriteLeftNothing(t, c, 'l');
    const digest = createHash('md5').update('other').digest();
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'd', body: bodyOf('body'), size: 4, contentMd5: digest, meta: META }), {
      instanceOf: BadDigestError,
    });
    await assertFailedWriteLeftNothing(t, c, 'd');
    // A failed overwrite leaves the old object in place.
    await put(c, 'keep', 'old');
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'keep', body: bodyOf('x'), size: 5, meta: META }));
    t.is((await get(c, 'keep')).toString(), 'old');
  });

  it('a body stream error that is not about length propagates unchanged', async (t, c) => {
    class SignatureError extends Error {}
    const bad = new Readable({
      read() {
        this.destroy(new SignatureError('bad chunk signature'));
      },
    });
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'sig', body: bad, size: 10, meta: META }), { instanceOf: SignatureError });
    await assertFailedWriteLeftNothing(t, c, 'sig');
  });

  multipartTests(it, put, get);

  // storage/backend.ts CommitCheck: the gateway's last check of a write that creates data.
  it('beforeCommit: a rejection is thrown as it is, and the write stores nothing and replaces nothing', async (t, c) => {
    const refusal = new Error('refused by the caller');
    const refuse = async (): Promise<void> => {
      throw refusal;
    };
    await put(c, 'kept', 'the object before');
    const sizes: Array<[string, Buffer, number | undefined]> = [
      ['small', Buffer.from('refused body'), 12],
      ['large', randomBytes(300 * 1024), 300 * 1024],
      ['empty', Buffer.alloc(0), 0],
      ['unsized', randomBytes(70 * 1024), undefined],
    ];
    for (const [what, data, size] of sizes) {
      for (const key of ['kept', `new-${what}`]) {
        const err = await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key, body: bodyOf(data), size, meta: META, beforeCommit: refuse }));
        t.is(err, refusal, `putObject ${what} onto ${key}`);
      }
      await assertFailedWriteLeftNothing(t, c, `new-${what}`);
    }
    const before = await c.b.headObject(c.bucket, 'kept');
    for (const writeConditions of [{ ifNoneMatch: '*' }, { ifMatch: `"${before.etag}"` }]) {
      const key = writeConditions.ifNoneMatch ? 'new-conditional' : 'kept';
      const err = await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key, body: bodyOf('conditional'), size: 11, meta: META, writeConditions, beforeCommit: refuse }));
      t.is(err, refusal, `conditional putObject ${JSON.stringify(writeConditions)}`);
    }
    await assertFailedWriteLeftNothing(t, c, 'new-conditional');
    t.is((await get(c, 'kept')).toString(), 'the object before');
    const copy = await t.throwsAsync(c.b.copyObject({ source: { bucket: c.bucket, key: 'kept' }, dest: { bucket: c.bucket, key: 'copy' }, beforeCommit: refuse }));
    t.is(copy, refusal, 'copyObject');
    await assertFailedWriteLeftNothing(t, c, 'copy');
    t.is(await t.throwsAsync(c.b.createMultipartUpload({ bucket: c.bucket, key: 'mp', meta: META, beforeCommit: refuse })), refusal, 'createMultipartUpload');
    t.deepEqual((await c.b.listMultipartUploads({ bucket: c.bucket, limit: 10 })).entries, [], 'no upload is left');
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'kept', meta: META });
    const p1 = await c.b.uploadPart({ bucket: c.bucket, key: 'kept', uploadId: up.uploadId, partNumber: 1, body: bodyOf('part'), size: 4 });
    const refusedPart = await t.throwsAsync(c.b.uploadPart({ bucket: c.bucket, key: 'kept', uploadId: up.uploadId, partNumber: 2, body: bodyOf('refused'), size: 7, beforeCommit: refuse }));
    t.is(refusedPart, refusal, 'uploadPart');
    const refusedCopy = await t.throwsAsync(c.b.uploadPartCopy({ bucket: c.bucket, key: 'kept', uploadId: up.uploadId, partNumber: 3, source: { bucket: c.bucket, key: 'kept' }, beforeCommit: refuse }));
    t.is(refusedCopy, refusal, 'uploadPartCopy');
    const listed = await c.b.listParts({ bucket: c.bucket, key: 'kept', uploadId: up.uploadId, limit: 10 });
    t.deepEqual(listed.parts.map((p) => p.partNumber), [1], 'refused parts are not kept');
    const complete = { bucket: c.bucket, key: 'kept', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }] };
    t.is(await t.throwsAsync(c.b.completeMultipartUpload({ ...complete, beforeCommit: refuse })), refusal, 'completeMultipartUpload');
    t.is((await get(c, 'kept')).toString(), 'the object before');
    let calls = 0;
    await c.b.completeMultipartUpload({ ...complete, beforeCommit: async () => void calls++ });
    t.is((await get(c, 'kept')).toString(), 'part', 'the upload can still be completed');
    await c.b.putObject({ bucket: c.bucket, key: 'ok', body: bodyOf('x'), size: 1, meta: META, beforeCommit: async () => void calls++ });
    t.is(calls, 2, 'called once per write');
  });

  it('beforeCommit runs once the whole body has arrived, an empty body too: the write cannot take effect before it', async (t, c) => {
    for (const [what, data] of [['empty', Buffer.alloc(0)], ['small', Buffer.from('late body')], ['large', randomBytes(300 * 1024)]] as const) {
      const body = new PassThrough();
      let ended = false;
      let sawEnd: boolean | undefined;
      const write = c.b.putObject({
        bucket: c.bucket,
        key: `late-${what}`,
        body,
        size: data.length,
        meta: META,
        beforeCommit: async () => {
          sawEnd = ended;
        },
      });
      // The body (an aws-chunked "0" chunk and trailer, say) arrives well after the write began.
      await new Promise((r) => setTimeout(r, 300));
      await t.throwsAsync(c.b.headObject(c.bucket, `late-${what}`), { instanceOf: NoSuchKeyError }, `${what}: nothing before the body ended`);
      ended = true;
      body.end(data);
      await write;
      t.true(sawEnd, `${what}: the check ran after the body ended`);
      t.is((await get(c, `late-${what}`)).length, data.length);
    }
  });

  it('beforeCommit runs once the write is bound to its bucket: a bucket created again meanwhile refuses the write', async (t, c) => {
    await put(c, 'src', 'source');
    const other = `conf-${randomBytes(6).toString('hex')}`;
    await c.b.createBucket(other);
    /** Deletes `other` (emptied) and creates it again: another incarnation of the name. */
    const recreate = async (): Promise<void> => {
      for (const e of (await c.b.listObjects({ bucket: other, limit: 1000 })).entries) if (e.kind === 'object') await c.b.deleteObject(other, e.key);
      await c.b.deleteBucket(other);
      await c.b.createBucket(other);
    };
    for (const [what, data, size] of [['small', Buffer.from('body'), 4], ['large', randomBytes(300 * 1024), 300 * 1024]] as const) {
      await t.throwsAsync(c.b.putObject({ bucket: other, key: what, body: bodyOf(data), size, meta: META, beforeCommit: recreate }), { instanceOf: NoSuchBucketError }, what);
    }
    await t.throwsAsync(c.b.copyObject({ source: { bucket: c.bucket, key: 'src' }, dest: { bucket: other, key: 'copy' }, beforeCommit: recreate }), { instanceOf: NoSuchBucketError }, 'copy');
    await t.throwsAsync(c.b.createMultipartUpload({ bucket: other, key: 'mp', meta: META, beforeCommit: recreate }), { instanceOf: NoSuchBucketError }, 'upload');
    t.deepEqual(names((await c.b.listObjects({ bucket: other, limit: 1000 })).entries), [], 'the bucket created again holds nothing of them');
    t.deepEqual((await c.b.listMultipartUploads({ bucket: other, limit: 10 })).entries, []);
    if (c.handle.leftovers) t.deepEqual(await c.handle.leftovers(), []);
    await c.b.deleteBucket(other);
  });
}

type It = (title: string, fn: (t: ExecutionContext, c: Ctx) => Promise<void>) => void;
type Put = (c: Ctx, key: string, data: Buffer | string, extra?: { tags?: Record<string, string>; meta?: ObjectWriteMeta }) => Promise<unknown>;
type Get = (c: Ctx, key: string) => Promise<Buffer>;

function multipartTests(it: It, put: Put, get: Get): void {
  const big = (fill: number) => Buffer.alloc(MIN_PART_SIZE, fill);
  const part = (c: Ctx, key: string, uploadId: string, partNumber: number, data: Buffer) =>
    c.b.uploadPart({ bucket: c.bucket, key, uploadId, partNumber, body: bodyOf(data), size: data.length });

  it('multipart: complete, etag, partNumber reads, unused and re-uploaded parts', async (t, c) => {
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'mp', meta: META, tags: { from: 'upload' } });
    const p1 = big(1);
    const p2 = Buffer.from('tail');
    await part(c, 'mp', up.uploadId, 1, Buffer.alloc(MIN_PART_SIZE, 9)); // replaced below
    const r1 = await part(c, 'mp', up.uploadId, 1, p1);
    t.is(r1.etag, md5hex(p1));
    const r2 = await part(c, 'mp', up.uploadId, 3, p2);
    await part(c, 'mp', up.uploadId, 2, Buffer.from('never used'));
    const done = await c.b.completeMultipartUpload({
      bucket: c.bucket,
      key: 'mp',
      uploadId: up.uploadId,
      parts: [{ partNumber: 1, etag: `"${r1.etag}"` }, { partNumber: 3, etag: r2.etag }],
    });
    const expected = createHash('md5').update(Buffer.concat([Buffer.from(r1.etag, 'hex'), Buffer.from(r2.etag, 'hex')])).digest('hex') + '-2';
    t.is(done.etag, expected);
    t.is(done.size, p1.length + p2.length);
    const head = await c.b.headObject(c.bucket, 'mp');
    t.is(head.etag, expected);
    t.deepEqual(head.partSizes, [p1.length, p2.length]);
    t.deepEqual(head.userMetadata, META.userMetadata);
    t.deepEqual(await c.b.getObjectTagging(c.bucket, 'mp'), { from: 'upload' });
    t.true((await get(c, 'mp')).equals(Buffer.concat([p1, p2])));
    const second = await c.b.getObject({ bucket: c.bucket, key: 'mp', partNumber: 2 });
    t.deepEqual(second.range, { start: p1.length, end: p1.length + 3 });
    t.is((await readAll(second.body)).toString(), 'tail');
    const across = await c.b.getObject({ bucket: c.bucket, key: 'mp', range: { kind: 'bounded', start: p1.length - 2, end: p1.length + 1 } });
    t.deepEqual(await readAll(across.body), Buffer.from([1, 1, 0x74, 0x61]));
    const err = await t.throwsAsync(c.b.getObject({ bucket: c.bucket, key: 'mp', partNumber: 3 }));
    // GetObject API reference / s3-tests test_multipart_get_part: a part number past the part count is InvalidPart.
    t.true(err instanceof InvalidPartError, String(err));
    await t.throwsAsync(c.b.listParts({ bucket: c.bucket, key: 'mp', uploadId: up.uploadId, limit: 10 }), { instanceOf: NoSuchUploadError });
  });

  it('multipart: order, missing part, wrong etag, too small, abort', async (t, c) => {
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'bad', meta: META });
    const r1 = await part(c, 'bad', up.uploadId, 1, Buffer.from('small'));
    const r2 = await part(c, 'bad', up.uploadId, 2, Buffer.from('small too'));
    const complete = (parts: Array<{ partNumber: number; etag: string }>) =>
      c.b.completeMultipartUpload({ bucket: c.bucket, key: 'bad', uploadId: up.uploadId, parts });
    await t.throwsAsync(complete([{ partNumber: 2, etag: r2.etag }, { partNumber: 1, etag: r1.etag }]), { instanceOf: InvalidPartOrderError });
    await t.throwsAsync(complete([{ partNumber: 1, etag: r1.etag }, { partNumber: 4, etag: r2.etag }]), { instanceOf: InvalidPartError });
    await t.throwsAsync(complete([{ partNumber: 1, etag: r2.etag }]), { instanceOf: InvalidPartError });
    await t.throwsAsync(complete([{ partNumber: 1, etag: r1.etag }, { partNumber: 2, etag: r2.etag }]), { instanceOf: EntityTooSmallError });
    t.is((await c.b.listParts({ bucket: c.bucket, key: 'bad', uploadId: up.uploadId, limit: 10 })).parts.length, 2);
    const single = await complete([{ partNumber: 2, etag: r2.etag }]);
    t.is(single.size, 9);
    t.is((await get(c, 'bad')).toString(), 'small too');

    const up2 = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'gone', meta: META });
    await part(c, 'gone', up2.uploadId, 1, Buffer.from('x'));
    await t.throwsAsync(c.b.abortMultipartUpload(c.bucket, 'other-key', up2.uploadId), { instanceOf: NoSuchUploadError });
    await c.b.abortMultipartUpload(c.bucket, 'gone', up2.uploadId);
    await t.throwsAsync(c.b.abortMultipartUpload(c.bucket, 'gone', up2.uploadId), { instanceOf: NoSuchUploadError });
    await t.throwsAsync(part(c, 'gone', up2.uploadId, 1, Buffer.from('x')), { instanceOf: NoSuchUploadError });
    await t.throwsAsync(c.b.headObject(c.bucket, 'gone'), { instanceOf: NoSuchKeyError });
  });

  it('multipart: listParts and listMultipartUploads with markers and limits', async (t, c) => {
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'lp', meta: META });
    for (const n of [1, 2, 3, 5]) await part(c, 'lp', up.uploadId, n, Buffer.from(`part ${n}`));
    const page1 = await c.b.listParts({ bucket: c.bucket, key: 'lp', uploadId: up.uploadId, limit: 2 });
    t.deepEqual(page1.parts.map((p) => p.partNumber), [1, 2]);
    t.true(page1.isTruncated);
    t.is(page1.upload.key, 'lp');
    t.deepEqual(page1.upload.meta.userMetadata, META.userMetadata);
    t.is(page1.parts[0]!.size, 6);
    t.is(page1.parts[0]!.etag, md5hex(Buffer.from('part 1')));
    const page2 = await c.b.listParts({ bucket: c.bucket, key: 'lp', uploadId: up.uploadId, limit: 2, partNumberMarker: 2 });
    t.deepEqual(page2.parts.map((p) => p.partNumber), [3, 5]);
    t.false(page2.isTruncated);

    const other = await Promise.all(['a/1', 'a/2', 'b', 'lp'].map((key) => c.b.createMultipartUpload({ bucket: c.bucket, key, meta: META })));
    const lpIds = [up.uploadId, other[3]!.uploadId].sort();
    const all = await c.b.listMultipartUploads({ bucket: c.bucket, limit: 100 });
    const show = (es: typeof all.entries) => es.map((e) => (e.kind === 'upload' ? `${e.key}#${e.uploadId}` : `P:${e.prefix}`));
    t.deepEqual(show(all.entries), [
      `a/1#${other[0]!.uploadId}`,
      `a/2#${other[1]!.uploadId}`,
      `b#${other[2]!.uploadId}`,
      `lp#${lpIds[0]}`,
      `lp#${lpIds[1]}`,
    ]);
    const rolled = await c.b.listMultipartUploads({ bucket: c.bucket, delimiter: '/', limit: 2 });
    t.deepEqual(show(rolled.entries), ['P:a/', `b#${other[2]!.uploadId}`]);
    t.true(rolled.isTruncated);
    const afterB = await c.b.listMultipartUploads({ bucket: c.bucket, keyMarker: 'b', limit: 100 });
    t.deepEqual(show(afterB.entries), [`lp#${lpIds[0]}`, `lp#${lpIds[1]}`]);
    const afterFirstLp = await c.b.listMultipartUploads({ bucket: c.bucket, keyMarker: 'lp', uploadIdMarker: lpIds[0], limit: 100 });
    t.deepEqual(show(afterFirstLp.entries), [`lp#${lpIds[1]}`]);
    const prefixed = await c.b.listMultipartUploads({ bucket: c.bucket, prefix: 'a/', limit: 1 });
    t.deepEqual(show(prefixed.entries), [`a/1#${other[0]!.uploadId}`]);
    t.true(prefixed.isTruncated);
    for (const u of [up, ...other]) await c.b.abortMultipartUpload(c.bucket, u.key, u.uploadId);
  });

  it('multipart: uploadPartCopy whole and ranged', async (t, c) => {
    await put(c, 'source', '0123456789');
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'pc', meta: META });
    const whole = await c.b.uploadPartCopy({ bucket: c.bucket, key: 'pc', uploadId: up.uploadId, partNumber: 1, source: { bucket: c.bucket, key: 'source' } });
    t.is(whole.etag, md5hex(Buffer.from('0123456789')));
    t.is(whole.size, 10);
    const ranged = await c.b.uploadPartCopy({
      bucket: c.bucket,
      key: 'pc',
      uploadId: up.uploadId,
      partNumber: 2,
      source: { bucket: c.bucket, key: 'source', range: { start: 2, end: 4 } },
    });
    t.is(ranged.etag, md5hex(Buffer.from('234')));
    await t.throwsAsync(
      c.b.uploadPartCopy({
        bucket: c.bucket,
        key: 'pc',
        uploadId: up.uploadId,
        partNumber: 3,
        source: { bucket: c.bucket, key: 'source', conditions: { ifMatch: '"nope"' } },
      }),
      { instanceOf: PreconditionFailedError },
    );
    await c.b.completeMultipartUpload({ bucket: c.bucket, key: 'pc', uploadId: up.uploadId, parts: [{ partNumber: 2, etag: ranged.etag }] });
    t.is((await get(c, 'pc')).toString(), '234');
  });

  // PutObject API reference, "Conditional writes": If-None-Match: * fails with 412 when the key exists, If-Match
  // with 412 on another ETag and 404 NoSuchKey on a missing key; nothing is written in either case.
  it('conditional writes: put, copy and complete check the object they would replace', async (t, c) => {
    const first = await c.b.putObject({ bucket: c.bucket, key: 'cas', body: bodyOf('v1'), size: 2, meta: META, writeConditions: { ifNoneMatch: '*' } });
    const dup = await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'cas', body: bodyOf('v2'), size: 2, meta: META, writeConditions: { ifNoneMatch: '*' } }));
    t.true(dup instanceof PreconditionFailedError && dup.condition === 'If-None-Match', String(dup));
    t.is((await get(c, 'cas')).toString(), 'v1');
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'cas', body: bodyOf('v2'), size: 2, meta: META, writeConditions: { ifMatch: '"0123456789abcdef0123456789abcdef"' } }), { instanceOf: PreconditionFailedError });
    await t.throwsAsync(c.b.putObject({ bucket: c.bucket, key: 'absent', body: bodyOf('v2'), size: 2, meta: META, writeConditions: { ifMatch: `"${first.etag}"` } }), { instanceOf: NoSuchKeyError });
    await t.throwsAsync(c.b.headObject(c.bucket, 'absent'), { instanceOf: NoSuchKeyError });
    await c.b.putObject({ bucket: c.bucket, key: 'cas', body: bodyOf('v2'), size: 2, meta: META, writeConditions: { ifMatch: `"${first.etag}"` } });
    t.is((await get(c, 'cas')).toString(), 'v2');
    await put(c, 'src', 'copied');
    await t.throwsAsync(c.b.copyObject({ source: { bucket: c.bucket, key: 'src' }, dest: { bucket: c.bucket, key: 'cas' }, writeConditions: { ifNoneMatch: '*' } }), { instanceOf: PreconditionFailedError });
    t.is((await get(c, 'cas')).toString(), 'v2');
    await c.b.copyObject({ source: { bucket: c.bucket, key: 'src' }, dest: { bucket: c.bucket, key: 'fresh' }, writeConditions: { ifNoneMatch: '*' } });
    t.is((await get(c, 'fresh')).toString(), 'copied');
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'cas', meta: META });
    const p1 = await c.b.uploadPart({ bucket: c.bucket, key: 'cas', uploadId: up.uploadId, partNumber: 1, body: bodyOf('mp'), size: 2 });
    const parts = [{ partNumber: 1, etag: p1.etag }];
    await t.throwsAsync(c.b.completeMultipartUpload({ bucket: c.bucket, key: 'cas', uploadId: up.uploadId, parts, writeConditions: { ifNoneMatch: '*' } }), { instanceOf: PreconditionFailedError });
    t.is((await get(c, 'cas')).toString(), 'v2');
    const current = await c.b.headObject(c.bucket, 'cas');
    await c.b.completeMultipartUpload({ bucket: c.bucket, key: 'cas', uploadId: up.uploadId, parts, writeConditions: { ifMatch: `"${current.etag}"` } });
    t.is((await get(c, 'cas')).toString(), 'mp');
  });

  // S3 User Guide, "Checking object integrity": a composite checksum is the checksum of the part checksums with
  // "-N"; a full-object CRC is the CRC of all the bytes. Parts without a client checksum get one computed.
  it('multipart checksums: composite and full-object values, part checksums kept', async (t, c) => {
    const a = Buffer.alloc(MIN_PART_SIZE, 7);
    const b = Buffer.from('tail');
    const { computeChecksum } = await import('../../storage/checksums.ts');
    for (const [algorithm, type] of [['CRC32', 'COMPOSITE'], ['CRC32C', 'FULL_OBJECT'], ['SHA256', 'COMPOSITE']] as const) {
      const key = `sum-${algorithm}`;
      const up = await c.b.createMultipartUpload({ bucket: c.bucket, key, meta: META, checksum: { algorithm, type } });
      const r1 = await c.b.uploadPart({ bucket: c.bucket, key, uploadId: up.uploadId, partNumber: 1, body: bodyOf(a), size: a.length });
      const r2 = await c.b.uploadPart({ bucket: c.bucket, key, uploadId: up.uploadId, partNumber: 2, body: bodyOf(b), size: b.length });
      const s1 = await computeChecksum(algorithm, a);
      const s2 = await computeChecksum(algorithm, b);
      t.is(r1.checksum?.value, s1);
      t.is(r2.checksum?.value, s2);
      const listed = await c.b.listParts({ bucket: c.bucket, key, uploadId: up.uploadId, limit: 10 });
      t.deepEqual(listed.upload.checksum, { algorithm, type });
      const meta = await c.b.completeMultipartUpload({
        bucket: c.bucket,
        key,
        uploadId: up.uploadId,
        parts: [{ partNumber: 1, etag: r1.etag, checksum: s1 }, { partNumber: 2, etag: r2.etag, checksum: s2 }],
      });
      const expected = type === 'COMPOSITE'
        ? `${await computeChecksum(algorithm, Buffer.concat([Buffer.from(s1, 'base64'), Buffer.from(s2, 'base64')]))}-2`
        : await computeChecksum(algorithm, Buffer.concat([a, b]));
      t.is(meta.checksum?.value, expected, `${algorithm} ${type}`);
      t.is((await c.b.headObject(c.bucket, key)).checksum?.value, expected);
    }
  });

  it('a wrong part checksum in the complete list is InvalidPart', async (t, c) => {
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'badsum', meta: META, checksum: { algorithm: 'CRC32', type: 'COMPOSITE' } });
    const r1 = await c.b.uploadPart({ bucket: c.bucket, key: 'badsum', uploadId: up.uploadId, partNumber: 1, body: bodyOf('x'), size: 1 });
    await t.throwsAsync(
      c.b.completeMultipartUpload({ bucket: c.bucket, key: 'badsum', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: r1.etag, checksum: 'AAAAAA==' }] }),
      { instanceOf: InvalidPartError },
    );
    await t.throwsAsync(c.b.headObject(c.bucket, 'badsum'), { instanceOf: NoSuchKeyError });
  });

  // UploadPartCopy API reference: a source range past the end of the source object is InvalidRange.
  it('uploadPartCopy with a range past the source is InvalidRange', async (t, c) => {
    await put(c, 'short', '0123');
    const up = await c.b.createMultipartUpload({ bucket: c.bucket, key: 'rng', meta: META });
    const err = await t.throwsAsync(c.b.uploadPartCopy({ bucket: c.bucket, key: 'rng', uploadId: up.uploadId, partNumber: 1, source: { bucket: c.bucket, key: 'short', range: { start: 2, end: 10 } } }));
    t.true(err instanceof InvalidRangeError, String(err));
  });

  it('bucket tagging and CORS documents are kept per bucket and go with it', async (t, c) => {
    t.deepEqual(await c.b.getBucketTagging(c.bucket), {});
    await c.b.putBucketTagging(c.bucket, { team: 'a', env: 'b' });
    t.deepEqual(await c.b.getBucketTagging(c.bucket), { team: 'a', env: 'b' });
    t.is(await c.b.getBucketCors(c.bucket), undefined);
    await c.b.putBucketCors(c.bucket, '<CORSConfiguration/>');
    t.is(await c.b.getBucketCors(c.bucket), '<CORSConfiguration/>');
    await c.b.deleteBucket(c.bucket);
    await c.b.createBucket(c.bucket);
    t.deepEqual(await c.b.getBucketTagging(c.bucket), {});
    t.is(await c.b.getBucketCors(c.bucket), undefined);
    await c.b.putBucketCors(c.bucket, undefined);
    await t.throwsAsync(c.b.getBucketTagging('no-such-bucket-here'), { instanceOf: NoSuchBucketError });
  });
}
