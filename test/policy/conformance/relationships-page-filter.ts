/**
 * Conformance: a listing's page filter (filterResources, which shares one evaluation among keys with no tuple that
 * matters to the caller) answers exactly what a separate check of each key answers, over randomized schemas and
 * tuples: unions, intersections, exclusions, `parent->read` and `.all()` arrows over implicit and explicit parents,
 * wildcards, nested and caveated groups, caveats with and without the request's context, tuples expired and still
 * live at the engine's instant, and keys whose ids sort differently in UTF-16 and in UTF-8.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { Relationships } from '../../../policy/relationships/index.ts';
import type { PolicyFactory } from './factory.ts';
import { seeded } from '../../helpers/seeded.ts';

const AUDIT = { actor: 'operator', reason: 'test' };
const NOW = Date.parse('2030-06-01T12:00:00Z');
const PAST = '2030-06-01T11:00:00Z';
const FUTURE = '2030-06-01T13:00:00Z';


/** Permission bodies for `read` on objects and folders (`parent` is implicit: object → folder → bucket). */
const READ_FORMS = [
  'reader + parent->read',
  '(reader + parent->read) - banned',
  'reader & parent->read',
  'reader + clearance.all(member)',
  '(reader + parent->read) & clearance.all(member)',
  'parent.all(read) + reader',
  'reader - banned',
  'parent->read - banned',
  'reader + parent.any(read) - banned',
];
const BUCKET_FORMS = ['reader', 'reader - banned', 'reader + owner'];

const SUBJECTS_OF_READER = 'user | app | user:* | group#member | user with tier | app with ip_allowlist | user with expiration | group#member with expiration | user with tier and expiration';

/** A schema with the chosen `read` forms; `objectsAsSubjects` lets tuples name objects (so no key may share). */
function schemaOf(objectForm: string, folderForm: string, bucketForm: string, objectsAsSubjects: boolean): string {
  const extra = objectsAsSubjects ? ' | object#owner' : '';
  return `use expiration
caveat tier(tier string, required string) { tier == required }
caveat ip_allowlist(client_ip ipaddress, allowed list<string>) { allowed.exists(cidr, client_ip.in_cidr(cidr)) }
definition user {}
definition app {}
definition group {
  relation member: user | app | group#member | user with expiration | user with tier${extra}
}
definition bucket {
  relation owner: user | group#member
  relation reader: ${SUBJECTS_OF_READER}
  relation banned: user | group#member | user with expiration
  permission read = ${bucketForm}
}
definition folder {
  relation parent: bucket | folder
  relation reader: ${SUBJECTS_OF_READER}
  relation banned: user | group#member | user with expiration
  relation clearance: group
  permission read = ${folderForm}
}
definition object {
  relation parent: folder | bucket
  relation owner: user
  relation reader: ${SUBJECTS_OF_READER}
  relation banned: user | group#member | user with expiration
  relation clearance: group
  permission read = ${objectForm}
}
`;
}

const FOLDERS = ['b/', 'b/a/', 'b/a/x/', 'b/c/', 'b/\uFFFD/', 'b/\u{1F600}/'];
const USERS = ['u0', 'u1', 'u2', 'u3'];
const GROUPS = ['g0', 'g1', 'g2'];

/** Random tuples over `keys`, their folders, bucket `b` and the groups. */
function tuplesOf(rand: (n: number) => number, keys: string[], objectsAsSubjects: boolean): string[] {
  const pick = <T>(xs: T[]): T => xs[rand(xs.length)] as T;
  const expiry = () => (rand(4) === 0 ? `[expiration:${rand(2) === 0 ? PAST : FUTURE}]` : '');
  const readerSubject = (): string => {
    switch (rand(7)) {
      case 0: return `user:*`;
      case 1: return `group:${pick(GROUPS)}#member${expiry()}`;
      case 2: return `user:${pick(USERS)}[tier:{"required":"${pick(['gold', 'silver'])}"}]${expiry()}`;
      case 3: return `app:a0[ip_allowlist:{"allowed":["${pick(['127.0.0.0/8', '10.0.0.0/8'])}"]}]`;
      case 4: return 'app:a0';
      default: return `user:${pick(USERS)}${expiry()}`;
    }
  };
  // By identity (caveat and expiry aside): a batch may name a tuple once.
  const byIdentity = new Map<string, string>();
  const out = { add: (tuple: string) => byIdentity.set(tuple.replace(/\[.*$/, ''), tuple) };
  const onResource = (resource: string, chance: number) => {
    if (rand(chance) === 0) out.add(`${resource}#reader@${readerSubject()}`);
    if (rand(chance * 2) === 0) out.add(`${resource}#banned@${rand(2) === 0 ? `group:${pick(GROUPS)}#member` : `user:${pick(USERS)}${expiry()}`}`);
    if (!resource.startsWith('bucket:') && rand(chance * 2) === 0) for (let i = rand(3); i >= 0; i--) out.add(`${resource}#clearance@group:${pick(GROUPS)}`);
  };
  for (const key of keys) {
    onResource(`object:${key}`, 6);
    // An explicit parent besides the implicit one: arrows walk both.
    if (rand(25) === 0) out.add(`object:${key}#parent@folder:${pick(FOLDERS)}`);
  }
  for (const folder of FOLDERS) onResource(`folder:${folder}`, 2);
  onResource('bucket:b', 2);
  if (rand(2) === 0) out.add(`bucket:b#owner@user:${pick(USERS)}`);
  for (const g of GROUPS) {
    for (let i = rand(3); i >= 0; i--) {
      const member = rand(5) === 0 ? `group:${pick(GROUPS)}#member` : `user:${pick(USERS)}${rand(3) === 0 ? `[tier:{"required":"gold"}]` : expiry()}`;
      if (member !== `group:${g}#member`) out.add(`group:${g}#member@${member}`);
    }
    if (rand(4) === 0) out.add(`group:${g}#member@app:a0`);
  }
  if (objectsAsSubjects) {
    const key = pick(keys);
    out.add(`group:g0#member@object:${key}#owner`);
    out.add(`object:${key}#owner@user:${pick(USERS)}`);
  }
  return [...byIdentity.values()];
}

/** Registers the page-filter differential tests against one engine. */
export function pageFilterSuite(test: TestFn, f: PolicyFactory): void {
  const check = async (t: ExecutionContext, seed: number) => {
    const rand = seeded(seed);
    const pick = <T>(xs: T[]): T => xs[rand(xs.length)] as T;
    const objectsAsSubjects = rand(6) === 0;
    const schema = schemaOf(pick(READ_FORMS), pick(READ_FORMS), pick(BUCKET_FORMS), objectsAsSubjects);
    const keys = Array.from({ length: 60 }, (_, i) => `${pick(FOLDERS)}k${String(i).padStart(2, '0')}`);
    const tuples = tuplesOf(rand, keys, objectsAsSubjects);
    const env = await f.fresh(t);
    const database = await env.open();
    const clock = { now: NOW - 3 * 3_600_000 };
    const rel = Relationships.open({ database, clock: () => clock.now, gcIntervalMs: 0 });
    // A second engine on its own connection, caches too small to help: the per-key reference.
    const single = Relationships.open({ database: await env.open(), clock: () => clock.now, gcIntervalMs: 0, cacheSize: 1 });
    await rel.writeSchema('acme', schema, AUDIT);
    await rel.write('acme', tuples.map((tuple) => ({ op: 'touch' as const, tuple })), AUDIT);
    clock.now = NOW;
    await env.bound();
    const ids = keys.map((k) => k);
    const contexts = [{ client_ip: '127.0.0.1', tier: 'gold' }, { client_ip: '10.1.2.3' }, { client_ip: '127.0.0.1', tier: 'silver' }];
    const subjects = ['user:u0', 'user:u1', 'user:u2', 'user:u3', 'app:a0', 'group:g0#member', 'user:nobody'];
    let granted = 0;
    for (const subject of subjects) {
      const context = pick(contexts);
      const expected: string[] = [];
      for (const id of ids) if ((await single.check('acme', { type: 'object', id }, 'read', subject, { context })).result === 'allowed') expected.push(id);
      // Twice: cold, then with the engine's caches warm.
      for (let round = 0; round < 2; round++) {
        const found = await rel.filterResources('acme', 'object', ids, 'read', subject, { context });
        t.deepEqual(found, expected, `seed ${seed}, ${subject}, round ${round}\n${schema}\n${tuples.join('\n')}`);
      }
      granted += expected.length;
    }
    rel.close();
    single.close();
    return granted;
  };

  test(`${f.engine}: a listing's page filter answers exactly the per-key checks, over randomized schemas and tuples`, async (t) => {
    let granted = 0;
    for (let seed = 1; seed <= 24; seed++) granted += await check(t, seed);
    // The generator must exercise both answers, or the comparison proves little.
    t.true(granted > 100, `only ${granted} grants over all seeds`);
  });
}
