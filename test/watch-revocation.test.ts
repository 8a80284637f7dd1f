/**
 * An open watch stream is a request that goes on delivering: each event is authorized at delivery. Revoking its
 * credential, disabling or locking down its tenant, or narrowing its session's role ends the stream (with a denial
 * line) before any later tuple change reaches it; the same holds for the console's feed.
 */
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import test, { type ExecutionContext } from 'ava';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readEvents, type ServerEvent } from '../gateway/cli/transport.ts';
import type { ScopeGrant } from '../policy/index.ts';
import { denials, ok, type Creds } from './helpers/admin.ts';
import { assumeRole, BUCKET, credential, TENANT, withGovernedGateway } from './helpers/authority.ts';
import { ROOT, type TestGateway } from './helpers/gateway.ts';
import { signRequest } from './helpers/raw.ts';

const WATCH_ALL: ScopeGrant[] = [{ families: ['watch'], bucket: '*' }];
/** How long a test waits for something that should happen before calling it missing (a bound, not a timing claim). */
const PATIENCE_MS = 20_000;

/** An open feed: the events it delivered so far, and whether (and when) it closed. */
interface Feed {
  status: number;
  events: ServerEvent[];
  closed: Promise<void>;
  abort(): void;
  saw(marker: string): boolean;
}

function feedOf(res: IncomingMessage): Feed {
  const events: ServerEvent[] = [];
  const stop = new AbortController();
  const closed = readEvents(res, (e) => events.push(e), stop.signal).catch(() => undefined);
  return { status: res.statusCode!, events, closed, abort: () => stop.abort(), saw: (marker) => events.some((e) => e.data.includes(marker)) };
}

/** Opens the admin watch feed signed by `creds` (a session's token included). */
async function openFeed(tg: TestGateway, creds: Creds): Promise<Feed> {
  const signed = await signRequest({ url: tg.gw.url, method: 'GET', path: '/_anvil/admin/v1/watch', query: { tenant: TENANT }, creds });
  return new Promise((resolve, reject) => {
    httpRequest(`${tg.gw.url}${signed.path}`, { headers: signed.headers }, (res) => resolve(feedOf(res))).on('error', reject).end();
  });
}

/** True once `check` holds, false when PATIENCE_MS passes first. */
async function eventually(check: () => boolean | Promise<boolean>): Promise<boolean> {
  const until = Date.now() + PATIENCE_MS;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

const touch = (tg: TestGateway, marker: string): Promise<unknown> =>
  ok(tg, ROOT, 'POST', '/tuples', { tenant: TENANT, reason: marker, updates: [{ op: 'touch', tuple: `folder:${BUCKET}/pub/${marker}/#reader@user:amy` }] });

/**
 * The feed delivers a change made before `cut`; after `cut` and one more change, that change is never delivered and
 * the feed closes, with a denial line for `accessKeyId`.
 */
async function cutOff(t: ExecutionContext, tg: TestGateway, feed: Feed, accessKeyId: string, cut: () => Promise<unknown>): Promise<void> {
  // Fresh markers: a feed opened without `after` replays the changelog from the start.
  const [before, after] = ['before', 'after'].map((m) => `${m}-cut-${Math.random().toString(36).slice(2, 8)}`) as [string, string];
  try {
    t.is(feed.status, 200);
    await touch(tg, before);
    t.true(await eventually(() => feed.saw(before)), 'the open feed delivers');
    await cut();
    await touch(tg, after);
    let closed = false;
    void feed.closed.then(() => (closed = true));
    t.true(await eventually(() => closed), 'the feed closes');
    t.false(feed.saw(after), 'a change after the cut is never delivered');
    t.true((await denials(tg)).some((d) => d.accessKeyId === accessKeyId && /Watch/.test(d.action)), 'a denial line names the stream');
  } finally {
    feed.abort();
  }
}

test('revoking the credential of an open watch stream ends it before the next change', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    await cutOff(t, tg, await openFeed(tg, watcher), watcher.accessKeyId, () => ok(tg, ROOT, 'POST', `/credentials/${watcher.id}/revoke`));
  });
});

test('rotating the credential of an open watch stream ends it once the old secret\'s grace is over', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    await cutOff(t, tg, await openFeed(tg, watcher), watcher.accessKeyId, () => ok(tg, ROOT, 'POST', `/credentials/${watcher.id}/rotate`, { graceSeconds: 0 }));
  });
});

test('a watch stream signed with the old secret, before or during a rotation\'s grace, ends when the grace does', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    const before = await openFeed(tg, watcher);
    await ok(tg, ROOT, 'POST', `/credentials/${watcher.id}/rotate`, { graceSeconds: 3 });
    const during = await openFeed(tg, watcher); // still the old secret, inside the grace
    const [inGrace, after] = ['in-grace', 'after-grace'].map((m) => `${m}-${Math.random().toString(36).slice(2, 8)}`) as [string, string];
    try {
      t.is(during.status, 200);
      await touch(tg, inGrace);
      t.true(await eventually(() => before.saw(inGrace) && during.saw(inGrace)), 'both feeds deliver while the old secret verifies');
      // Past the grace: the old secret itself no longer signs anything.
      const s3 = tg.client(watcher);
      t.true(await eventually(async () => (await s3.send(new ListBucketsCommand({})).then(() => 'ok', (e: Error) => e.name)) === 'SignatureDoesNotMatch'));
      s3.destroy();
      await touch(tg, after);
      let closed = 0;
      for (const feed of [before, during]) void feed.closed.then(() => closed++);
      t.true(await eventually(() => closed === 2), 'both feeds close');
      t.false(before.saw(after) || during.saw(after), 'a change after the grace is never delivered');
      t.is((await denials(tg)).filter((d) => d.accessKeyId === watcher.accessKeyId && /Watch/.test(d.action)).length, 2, 'a denial line for each stream');
    } finally {
      before.abort();
      during.abort();
    }
  });
});

test('disabling the tenant of an open watch stream ends it before the next change', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    await cutOff(t, tg, await openFeed(tg, watcher), watcher.accessKeyId, () => ok(tg, ROOT, 'POST', `/tenants/${TENANT}/disable`));
  });
});

test('locking down the tenant of an open watch stream ends it before the next change', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    await cutOff(t, tg, await openFeed(tg, watcher), watcher.accessKeyId, () => ok(tg, ROOT, 'POST', `/tenants/${TENANT}/lockdown`, { reason: 'test' }));
  });
});

test('a session whose role is narrowed away from what it watches stops receiving and its stream ends; so does one whose parent is revoked', async (t) => {
  await withGovernedGateway(async (tg) => {
    const app = await credential(tg, [{ families: ['watch'], bucket: BUCKET }]);
    const role = await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'watcher', scopes: [{ families: ['watch'], bucket: BUCKET }] });
    const narrowed = await assumeRole(tg, app, role.arn);
    await cutOff(t, tg, await openFeed(tg, narrowed), narrowed.accessKeyId, () =>
      ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'watcher', replace: true, scopes: [{ families: ['watch'], bucket: BUCKET, prefix: 'secret/' }] }));
    await ok(tg, ROOT, 'POST', '/roles', { tenant: TENANT, name: 'watcher', replace: true, scopes: [{ families: ['watch'], bucket: BUCKET }] });
    const orphan = await assumeRole(tg, app, role.arn);
    await cutOff(t, tg, await openFeed(tg, orphan), orphan.accessKeyId, () => ok(tg, ROOT, 'POST', `/credentials/${app.id}/revoke`));
  });
});

test('the console\'s watch feed is authorized at each delivery too: a revoked credential\'s feed gets no later change', async (t) => {
  await withGovernedGateway(async (tg) => {
    const watcher = await credential(tg, WATCH_ALL);
    const signIn = await fetch(`${tg.gw.url}/_anvil/console/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accessKeyId: watcher.accessKeyId, secretKey: watcher.secretAccessKey }),
    });
    t.is(signIn.status, 200);
    const cookie = String(signIn.headers.get('set-cookie')).split(';')[0]!;
    const feed = await new Promise<Feed>((resolve, reject) => {
      httpRequest(`${tg.gw.url}/_anvil/console/api/v1/watch?tenant=${TENANT}`, { headers: { cookie } }, (res) => resolve(feedOf(res))).on('error', reject).end();
    });
    await cutOff(t, tg, feed, watcher.accessKeyId, () => ok(tg, ROOT, 'POST', `/credentials/${watcher.id}/revoke`));
  });
});
