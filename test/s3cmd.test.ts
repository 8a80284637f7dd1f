/**
 * s3cmd (Debian's package, SigV4, path-style) run unchanged against the gateway on each backend, with a credential
 * scoped to one prefix of a tenant's bucket: put (single and multipart), ls, get, sync, cp, mv, modify, info, du and
 * recursive del inside the prefix work (`info` reads the bucket's CORS too: bucket:read on the whole bucket); writes, reads and copies outside it are refused and change nothing.
 * test/tools/install-backup-tools.sh installs s3cmd when a machine lacks it.
 */
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onEachBackend, type Flavour } from './helpers/backends.ts';
import { sameBytes } from './helpers/bytes.ts';
import { pattern } from './helpers/gateway.ts';

const run = promisify(execFile);
const test = anyTest as TestFn;

/** One s3cmd setup: its config file (the scoped credential) and a scratch directory. */
interface Setup {
  s3cmd(...args: string[]): Promise<string>;
  work: string;
  s3: S3Client;
  bucket: string;
}

const setups = new Map<Flavour['name'], Promise<Setup>>();

/** Makes a bucket owned by a tenant, an object outside the prefix, and an s3cmd config for a `host1/` credential. */
function setup(f: Flavour): Promise<Setup> {
  let p = setups.get(f.name);
  if (!p) {
    p = (async () => {
      const { gw, s3 } = f.gw;
      const bucket = `s3cmd-${f.name}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const tenant = `s3cmd-${f.name}`;
      await gw.policy.createTenant({ name: tenant });
      await gw.policy.assignBucket(bucket, tenant, { reassign: true });
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'host2/private', Body: 'other host' }));
      const c = await gw.policy.createCredential({
        tenant,
        name: 'host1',
        // `s3cmd info` also reads the bucket's CORS configuration, which needs bucket:read on the whole bucket.
        scopes: [
          { families: ['object:read', 'object:write', 'object:delete', 'object:list'], bucket, prefix: 'host1/' },
          { families: ['bucket:read'], bucket },
        ],
      });
      const work = mkdtempSync(join(tmpdir(), 'anvil-s3cmd-'));
      const host = new URL(gw.url).host;
      const config = join(work, 's3cfg');
      writeFileSync(
        config,
        [
          '[default]',
          `access_key = ${c.accessKeyId}`,
          `secret_key = ${c.secretKey}`,
          `host_base = ${host}`,
          // No %(bucket)s: path-style addressing on the loopback address.
          `host_bucket = ${host}`,
          'use_https = False',
          'bucket_location = us-east-1',
          '',
        ].join('\n'),
      );
      // The gateway is plain HTTP on loopback; a machine-wide CA bundle setting only confuses the tool's TLS setup.
      const { AWS_CA_BUNDLE: _ca, SSL_CERT_FILE: _cert, ...rest } = process.env;
      const env = { ...rest, HOME: work };
      const s3cmd = async (...args: string[]) => (await run('s3cmd', ['-c', config, '--no-progress', ...args], { env })).stdout;
      return { s3cmd, work, s3, bucket };
    })();
    setups.set(f.name, p);
  }
  return p;
}

test.after.always(async () => {
  for (const p of setups.values()) rmSync((await p).work, { recursive: true, force: true });
});

async function keys(s: Setup, prefix: string): Promise<string[]> {
  const res = await s.s3.send(new ListObjectsV2Command({ Bucket: s.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((c) => c.Key!).sort();
}

onEachBackend(test, 's3cmd', (it) => {
  it('s3cmd put, multipart put, ls, get, info and du inside the prefix', async (t, f) => {
    const s = await setup(f);
    const small = join(s.work, 'small.txt');
    const big = join(s.work, 'big.bin');
    writeFileSync(small, 'hello from s3cmd\n');
    writeFileSync(big, pattern(12 * 1024 * 1024 + 17));
    await s.s3cmd('put', small, `s3://${s.bucket}/host1/put/small.txt`);
    // 5 MiB parts: three parts, the last one short.
    await s.s3cmd('put', '--multipart-chunk-size-mb=5', big, `s3://${s.bucket}/host1/put/big.bin`);
    const head = await s.s3.send(new HeadObjectCommand({ Bucket: s.bucket, Key: 'host1/put/big.bin' }));
    t.regex(head.ETag ?? '', /-3"$/);

    const ls = await s.s3cmd('ls', `s3://${s.bucket}/host1/put/`);
    t.regex(ls, /s3:\/\/s3cmd-\w+\/host1\/put\/small\.txt/);
    t.regex(ls, /s3:\/\/s3cmd-\w+\/host1\/put\/big\.bin/);
    // The bucket root lists only what the credential may see.
    const root = await s.s3cmd('ls', '-r', `s3://${s.bucket}`);
    t.notRegex(root, /host2/);
    t.regex(root, /host1\/put\/small\.txt/);

    const back = join(s.work, 'big-back.bin');
    await s.s3cmd('get', '--force', `s3://${s.bucket}/host1/put/big.bin`, back);
    sameBytes(t, readFileSync(back), readFileSync(big));
    const info = await s.s3cmd('info', `s3://${s.bucket}/host1/put/small.txt`);
    t.regex(info, /File size: 17/);
    t.regex(info, /MD5 sum:\s+[0-9a-f]{32}/);
    const du = await s.s3cmd('du', `s3://${s.bucket}/host1/put/`);
    t.regex(du, new RegExp(`^\\s*${17 + 12 * 1024 * 1024 + 17}\\s+2 objects`));
  });

  it('s3cmd sync uploads once, then nothing; cp, mv, modify and recursive del', async (t, f) => {
    const s = await setup(f);
    const src = join(s.work, 'src');
    mkdirSync(join(src, 'nested'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'nested/b.bin'), pattern(300_000));
    const first = await s.s3cmd('sync', `${src}/`, `s3://${s.bucket}/host1/sync/`);
    t.regex(first, /upload:/);
    const second = await s.s3cmd('sync', `${src}/`, `s3://${s.bucket}/host1/sync/`);
    t.notRegex(second, /upload:/);
    t.deepEqual(await keys(s, 'host1/sync/'), ['host1/sync/a.txt', 'host1/sync/nested/b.bin']);

    await s.s3cmd('cp', `s3://${s.bucket}/host1/sync/a.txt`, `s3://${s.bucket}/host1/copy.txt`);
    await s.s3cmd('mv', `s3://${s.bucket}/host1/copy.txt`, `s3://${s.bucket}/host1/moved.txt`);
    await s.s3cmd('modify', '--add-header=x-amz-meta-colour:blue', `s3://${s.bucket}/host1/moved.txt`);
    const moved = await s.s3.send(new HeadObjectCommand({ Bucket: s.bucket, Key: 'host1/moved.txt' }));
    t.is(moved.Metadata?.colour, 'blue');
    t.is(moved.ContentLength, 6);
    t.false((await keys(s, 'host1/')).includes('host1/copy.txt'));

    await s.s3cmd('del', '--recursive', '--force', `s3://${s.bucket}/host1/sync/`);
    t.deepEqual(await keys(s, 'host1/sync/'), []);
  });

  it('s3cmd is refused outside the prefix, and nothing there changes', async (t, f) => {
    const s = await setup(f);
    const file = join(s.work, 'intruder.txt');
    writeFileSync(file, 'intruder\n');
    await t.throwsAsync(s.s3cmd('put', file, `s3://${s.bucket}/host2/intruder.txt`), { message: /403|AccessDenied/ });
    await t.throwsAsync(s.s3cmd('get', '--force', `s3://${s.bucket}/host2/private`, join(s.work, 'stolen')), { message: /403|Forbidden/ });
    await t.throwsAsync(s.s3cmd('cp', `s3://${s.bucket}/host2/private`, `s3://${s.bucket}/host1/stolen`), { message: /403|Forbidden/ });
    await t.throwsAsync(s.s3cmd('del', `s3://${s.bucket}/host2/private`), { message: /403|AccessDenied/ });
    await t.throwsAsync(s.s3cmd('ls', `s3://${s.bucket}/host2/`), { message: /403|AccessDenied/ });
    t.deepEqual(await keys(s, 'host2/'), ['host2/private']);
    t.false((await keys(s, 'host1/')).includes('host1/stolen'));
  });
});
