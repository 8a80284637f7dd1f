/**
 * The disk reserve's threshold with two workers, each counting only its own writes in flight: uploads racing on both
 * workers toward a nearly full volume (a tmpfs the test mounts) are refused with 507 before they reach into the
 * reserve. Free space never falls below the threshold by more than the slack each write has between two free-space
 * checks (README, "Worker processes": about 3 MiB per write in flight), the reserve file stays whole, every
 * acknowledged object reads back intact, and a delete still commits.
 */
process.env.ANVIL_TEST_WORKERS ??= '2';
const { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
const { default: test } = await import('ava');
const { createHash, randomBytes } = await import('node:crypto');
const { statSync } = await import('node:fs');
const { join } = await import('node:path');
const { RESERVE_FILE } = await import('../../storage/index.ts');
const { bodyBytes, ROOT, startTestGateway } = await import('../helpers/gateway.ts');
const { mountSmallVolume } = await import('../helpers/small-volume.ts');
const { freshConnections, requestIdOf, servedBy } = await import('./served-by.ts');

const MIB = 1024 * 1024;
const RESERVE_MIB = 16;
const WRITERS = 4;
/** Per write in flight: bytes between two checks (1 MiB) plus those received and not yet on disk (up to 2 MiB). */
const SLACK_PER_WRITE = 3 * MIB;

const volume = mountSmallVolume(96);
const mounted = 'dir' in volume ? volume : undefined;
if (!mounted) console.log(`full-disk race test skipped: ${(volume as { unavailable: string }).unavailable}`);
test.after.always(() => mounted?.unmount());

(mounted ? test : test.skip)('uploads racing on two workers toward a full volume: 507 before the reserve, acknowledged objects intact', async (t) => {
  const tg = await startTestGateway({ ANVIL_SPACE_RESERVE_MB: String(RESERVE_MIB) }, mounted!.dir);
  const clients = Array.from({ length: WRITERS }, () => freshConnections(tg.gw.url, ROOT));
  let lowest = Infinity;
  const sampler = setInterval(() => (lowest = Math.min(lowest, mounted!.free())), 5);
  try {
    await tg.s3.send(new CreateBucketCommand({ Bucket: 'race' }));
    const acked = new Map<string, string>();
    const refused: string[] = [];
    const ids: string[] = [];
    /** One 12 MiB upload: acknowledged (its MD5 kept) or refused with 507; its request id kept either way. */
    const upload = async (s3: (typeof clients)[number], key: string): Promise<void> => {
      const body = randomBytes(12 * MIB);
      try {
        ids.push(requestIdOf(await s3.send(new PutObjectCommand({ Bucket: 'race', Key: key, Body: body })))!);
        acked.set(key, createHash('md5').update(body).digest('hex'));
      } catch (err) {
        const e = err as Error & { $metadata?: { httpStatusCode?: number } };
        t.is(e.$metadata?.httpStatusCode, 507, `${key}: ${e.name} ${e.message}`);
        refused.push(key);
        const id = requestIdOf(err);
        if (id) ids.push(id);
      }
    };
    for (let round = 0; round < 6 && refused.length === 0; round++) {
      await Promise.all(clients.map((s3, w) => upload(s3, `r${round}-w${w}`)));
    }
    // The kernel hands each new connection to whichever worker accepts first (SCHED_NONE, gateway/cluster.ts), so the
    // rounds above can all land on one worker. More uploads, now toward the full volume, until both have answered:
    // each must be refused (507) like the others, so the second worker's threshold is exercised too.
    for (let extra = 0; extra < 40 && new Set((await servedBy(tg.logs, ids)).values()).size < 2; extra++) {
      await upload(clients[extra % WRITERS]!, `extra-${extra}`);
    }
    clearInterval(sampler);
    t.log(`${acked.size} acknowledged, ${refused.length} refused; lowest free ${(lowest / MIB).toFixed(1)} MiB`);
    t.true(refused.length > 0, 'the volume filled up');
    t.true(new Set((await servedBy(tg.logs, ids)).values()).size === 2, 'the uploads reached both workers');
    t.true(lowest >= RESERVE_MIB * MIB - WRITERS * SLACK_PER_WRITE, `free space fell to ${lowest} bytes`);
    t.is(statSync(join(tg.dataDir, RESERVE_FILE)).size, RESERVE_MIB * MIB, 'the reserve file is whole');

    for (const [key, sum] of acked) {
      const got = await bodyBytes((await tg.s3.send(new GetObjectCommand({ Bucket: 'race', Key: key }))).Body);
      t.is(createHash('md5').update(got).digest('hex'), sum, `${key} is intact`);
    }
    const [first] = acked.keys();
    if (first !== undefined) await tg.s3.send(new DeleteObjectCommand({ Bucket: 'race', Key: first }));
  } finally {
    clearInterval(sampler);
    for (const s3 of clients) s3.destroy();
    await tg.close();
  }
});
