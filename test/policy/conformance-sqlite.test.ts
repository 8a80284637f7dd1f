/**
 * The policy conformance suites against SQLite (the default engine: files in the data directory), then what only
 * SQLite deployments have: a generated master key file, files readable by their owner only, and databases written by
 * releases before PostgreSQL support upgrading in place.
 */
import test from 'ava';
import Database from 'better-sqlite3';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyDatabase, PolicyStore, SQLITE_FILES } from '../../policy/index.ts';
import { POLICY_MIGRATIONS } from '../../policy/database/migrations/policy.ts';
import { RELATIONSHIP_MIGRATIONS } from '../../policy/database/migrations/relationships.ts';
import { credentialSuite } from './conformance/credentials.ts';
import { SQLITE } from './conformance/factory.ts';
import { logSuite } from './conformance/logs.ts';
import { operationsSuite } from './conformance/operations.ts';
import { relationshipSuite } from './conformance/relationships.ts';
import { tempDataDir } from './helpers.ts';

credentialSuite(test, SQLITE);
relationshipSuite(test, SQLITE);
logSuite(test, SQLITE);
operationsSuite(test, SQLITE);

const SCOPES = [{ families: ['object:read' as const], bucket: 'backups' }];

test('sqlite: a master key is generated into master.key (0600); files hold only ciphertext', async (t) => {
  const dir = tempDataDir(t);
  const database = await PolicyDatabase.open({ dataDir: dir });
  t.teardown(() => database.close());
  const store = await PolicyStore.open({ database, dataDir: dir });
  const created = await store.createCredential({ tenant: 'root', name: 'backup', scopes: SCOPES });
  const rotated = await store.rotateCredential(created.accessKeyId, { graceSeconds: 60 });
  t.is(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
  for (const file of Object.values(SQLITE_FILES)) t.is(statSync(join(dir, file)).mode & 0o777, 0o600, file);
  for (const file of readdirSync(dir)) {
    const raw = readFileSync(join(dir, file));
    for (const secret of [created.secretKey, rotated.secretKey]) t.false(raw.includes(Buffer.from(secret)), `${file} holds a plaintext secret`);
  }
});

test('sqlite: databases of earlier releases upgrade in place, their revisions carried over', async (t) => {
  const dir = tempDataDir(t);
  // What a release before PostgreSQL support left behind: policy.db at migration 3, relationships.db at 2.
  const legacy = (file: string, sqls: string[], revision: number) => {
    const db = new Database(join(dir, file));
    db.exec('CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
    sqls.forEach((sql, i) => {
      db.exec(sql);
      db.prepare('INSERT INTO migrations VALUES (?, ?)').run(i + 1, Date.now());
    });
    db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(revision);
    db.close();
  };
  legacy('policy.db', POLICY_MIGRATIONS.slice(0, 3).map((m) => m.sqlite), 41);
  legacy('relationships.db', RELATIONSHIP_MIGRATIONS.slice(0, 2).map((m) => m.sqlite), 17);
  const database = await PolicyDatabase.open({ dataDir: dir });
  t.teardown(() => database.close());
  t.is(database.signals.policy.revision, 41);
  t.is(database.signals.relationships.revision, 17);
  const store = await PolicyStore.open({ database, dataDir: dir });
  await store.createTenant({ name: 'acme' });
  t.is(database.signals.policy.revision, 42);
});

test('sqlite: once the server reports request starts, a commit by another process is seen by the next request, and without reports by every lookup', async (t) => {
  const dir = tempDataDir(t);
  // `gateway` reports request starts as the server does; `cli` and `library` are other processes' connections.
  const [gateway, cli, library] = await Promise.all([1, 2, 3].map(() => PolicyDatabase.open({ dataDir: dir })));
  t.teardown(async () => {
    for (const database of [gateway, cli, library]) await database.close();
  });
  const bump = (concern: 'policy' | 'relationships') => cli.change(concern, async () => ({ result: undefined, changed: true }));
  for (const concern of ['policy', 'relationships'] as const) {
    const signal = gateway.signals[concern];
    gateway.requestStarted();
    signal.sync();
    const before = signal.revision;
    await bump(concern);
    // The request that starts after the commit: its first lookup checks, and so do none of its later ones.
    gateway.requestStarted();
    await signal.sync();
    t.is(signal.revision, before + 1, `${concern}: the next request sees the commit`);
    await signal.sync();
    t.is(signal.revision, before + 1);
    await bump(concern);
    gateway.requestStarted();
    await signal.sync();
    t.is(signal.revision, before + 2, `${concern}: and the one after sees the next`);
    // A process that reports no request starts (the CLI, a script) checks at every lookup.
    const own = library.signals[concern];
    await own.sync();
    const seen = own.revision;
    await bump(concern);
    await own.sync();
    t.is(own.revision, seen + 1, `${concern}: without request starts every lookup checks`);
  }
});
