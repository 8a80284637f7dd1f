import test, { type ExecutionContext } from 'ava';
import {
  DeniedError,
} from '../../../policy/index.ts';
import {
  compileSchema,
  DEFAULT_OBJECT_SCHEMA,
  decodeRevision,
  formatTuple,
  ImportError,
  parseTuple,
  PreconditionFailedError,
  Relationships,
  schemaDiff,
  SchemaConflictError,
  SchemaValidationError,
  tupleFromJson,
  formatSpiceDbTuple,
  TupleValidationError,
  type Tuple,
} from '../../../policy/relationships/index.ts';
import { tempDataDir } from '../helpers.ts';

const AUDIT = { actor: 'operator', reason: 'test', requestId: 'req-1' };

function setup(t: ExecutionContext): { dir: string; rel: Relationships } {
  const dir = tempDataDir(t);
  const rel = Relationships.open({ dataDir: dir });
  t.teardown(() => rel.close());
  rel.writeSchema('acme', DEFAULT_OBJECT_SCHEMA, AUDIT);
  return { dir, rel };
}

const errorsOf = (text: string): string[] => {
  try {
    compileSchema(text);
    return [];
  } catch (error) {
    return (error as SchemaValidationError).errors;
  }
};

test('schema validation names each kind of error', (t) => {
  t.regex(errorsOf('definition a { relation r: nope }').join(), /unknown type "nope"/);
  t.regex(errorsOf('definition a { relation r: a#zz }').join(), /unknown relation "a#zz"/);
  t.regex(errorsOf('definition a { relation r: a\n permission p = q }').join(), /unknown relation or permission "q"/);
  t.regex(errorsOf('definition a { relation r: a\n permission x = r\n permission p = x->r }').join(), /arrow over "x", which is a permission/);
  t.regex(errorsOf('definition a { relation r: a | a:*\n permission p = r->r }').join(), /walks a#r, which includes wildcard type a:\*; arrows cannot walk wildcards/);
  t.regex(errorsOf('definition u {} definition g { relation m: u:* } definition a { relation r: g#m }').join(), /includes wildcard type u:\*; wildcards cannot be included transitively/);
  t.regex(errorsOf('definition u {} definition a { relation r: u | u }').join(), /duplicate allowed subject type "u"/);
  t.regex(errorsOf('definition u {} definition a { relation r: u with expiration }').join(), /unknown caveat "expiration"/);
  t.regex(errorsOf('use typechecking\ndefinition u {}').join(), /unsupported feature "use typechecking"/);
  t.regex(errorsOf('definition u {}\nuse expiration').join(), /must come before every definition/);
  t.regex(errorsOf('definition u {} definition a { relation r: u\n permission p = r.some(x) }').join(), /unknown arrow function "some"/);
  // What SpiceDB only warns about is accepted with a warning, as `zed validate` does.
  t.regex(compileSchema('definition a { relation r: a\n permission p = r & p }').warnings.join(), /a#p: recursion without a base case/);
  t.regex(compileSchema('definition u {} definition a { relation r: u\n permission p = r->zz }').warnings.join(), /no subject type of r has "zz"/);
  t.regex(errorsOf('definition a { relation r: a with c }').join(), /unknown caveat "c"/);
  t.regex(errorsOf('caveat c(n int) { n > "x" }').join(), /type error: .*overload/);
  t.regex(errorsOf('caveat c(n int) { m > 1 }').join(), /unknown identifier "m"/);
  t.regex(errorsOf('caveat c(n frob) { n }').join(), /unknown type frob/);
  t.regex(errorsOf('definition a { relation r: a\n /* unterminated').join(), /unterminated comment/);
  t.deepEqual(errorsOf(DEFAULT_OBJECT_SCHEMA), []);
  t.deepEqual(compileSchema(DEFAULT_OBJECT_SCHEMA).warnings, []);
});

test('the parser reads prefixes, use expiration, caveat-and-expiration subject types and arrow functions', (t) => {
  const schema = compileSchema(`use expiration
    caveat acme/ok(n int) { n > 1 }
    definition acme/user {}
    definition acme/team { relation member: acme/user | acme/user with expiration | acme/user with acme/ok and expiration }
    definition acme/doc {
      relation team: acme/team
      permission any = team.any(member)
      permission arrow = team->member
      permission all = team.all(member)
    }`);
  t.true(schema.useExpiration);
  t.deepEqual(schema.definitions.get('acme/team')?.relations.get('member'), [
    { type: 'acme/user' },
    { type: 'acme/user', expiration: true },
    { type: 'acme/user', caveat: 'acme/ok', expiration: true },
  ]);
  const doc = schema.definitions.get('acme/doc')!;
  t.deepEqual(doc.permissions.get('any'), doc.permissions.get('arrow'));
  t.deepEqual(doc.permissions.get('all'), { kind: 'arrow', relation: 'team', target: 'member', all: true });
  // Without `use expiration`, "expiration" is an ordinary caveat name, as in SpiceDB.
  const plain = compileSchema('definition u {} caveat expiration(n int) { n > 1 } definition d { relation r: u with expiration }');
  t.deepEqual(plain.definitions.get('d')?.relations.get('r'), [{ type: 'u', caveat: 'expiration' }]);
});

test('a schema change that would strand tuples is refused and lists them', (t) => {
  const { rel } = setup(t);
  rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:*' }, { op: 'touch', tuple: 'bucket:b#owner@user:amy' }], AUDIT);
  const narrowed = DEFAULT_OBJECT_SCHEMA.replace('relation reader: user | app | user:* | group#member | user with ip_allowlist', 'relation reader: user | app | group#member | user with ip_allowlist');
  t.not(narrowed, DEFAULT_OBJECT_SCHEMA);
  const error = t.throws(() => rel.writeSchema('acme', narrowed, AUDIT), { instanceOf: SchemaConflictError }) as SchemaConflictError;
  t.deepEqual(error.tuples, ['bucket:b#reader@user:*']);
  t.is(error.total, 1);
  t.is(rel.check('acme', 'bucket:b', 'read', 'user:zed').result, 'allowed');
});

test('schemaDiff reports widened and narrowed permissions with subject types', (t) => {
  const widened = DEFAULT_OBJECT_SCHEMA.replace('permission delete = owner\n}', 'permission delete = owner + writer\n}');
  const diff = schemaDiff(widened, DEFAULT_OBJECT_SCHEMA);
  const del = diff.permissions.find((p) => p.permission === 'bucket#delete');
  t.like(del, { change: 'widened', grantedByAdded: ['bucket#writer'] });
  t.true(diff.permissions.find((p) => p.permission === 'object#read')?.subjectTypes.includes('user:*'));
  t.true(diff.permissions.find((p) => p.permission === 'object#delete')?.grantedBy.includes('bucket#owner'));
  const back = schemaDiff(DEFAULT_OBJECT_SCHEMA, widened).permissions.find((p) => p.permission === 'bucket#delete');
  t.like(back, { change: 'narrowed', grantedByRemoved: ['bucket#writer'] });
  t.deepEqual(schemaDiff(DEFAULT_OBJECT_SCHEMA.replace('client_ip.in_cidr(cidr)', 'client_ip.in_cidr(cidr) || false'), DEFAULT_OBJECT_SCHEMA).caveats, [{ name: 'ip_allowlist', change: 'changed' }]);
});

test('schemaDiff judges expiration and .all() arrows: restrictions narrow, lifting them widens', (t) => {
  const base = `use expiration
    definition user {}
    definition team { relation member: user }
    definition doc {
      relation team: team
      relation viewer: user
      relation blocked: team
      permission view = viewer + team->member
      permission read = view
      permission open = viewer - blocked->member
    }`;
  const change = (from: string, to: string, permission: string) => schemaDiff(to, from).permissions.find((p) => p.permission === permission)?.change;
  const expiring = base.replace('relation viewer: user', 'relation viewer: user with expiration');
  t.is(change(base, expiring, 'doc#view'), 'narrowed');
  t.is(change(expiring, base, 'doc#view'), 'widened');
  t.is(change(base, base.replace('relation viewer: user', 'relation viewer: user | user with expiration'), 'doc#view'), 'unchanged');
  const all = base.replace('team->member', 'team.all(member)');
  t.is(change(base, all, 'doc#view'), 'narrowed');
  t.is(change(base, all, 'doc#read'), 'narrowed', 'followed through the permission that uses it');
  t.is(change(all, base, 'doc#view'), 'widened');
  t.is(change(base, base.replace('team->member', 'team.any(member)'), 'doc#view'), 'unchanged');
  t.is(change(base, base.replace('blocked->member', 'blocked.all(member)'), 'doc#open'), 'widened', 'flipped under exclusion');
});

test('tuple string and JSON forms round-trip weird keys', (t) => {
  for (const id of ['b/a b.txt', 'b/#hash@at:colon', 'b/ünï/çødé 日本', 'b/100%', 'b/[x]*', 'b/tab\there', 'b/%41']) {
    const tuple: Tuple = { resource: { type: 'object', id }, relation: 'reader', subject: { type: 'group', id: `g ${id}`, relation: 'member' } };
    const text = formatTuple(tuple);
    t.notRegex(text.slice(text.indexOf(':') + 1, text.indexOf('#reader')), /[#@:[\]\s*]/);
    t.deepEqual(parseTuple(text), tuple, text);
    t.deepEqual(tupleFromJson(JSON.parse(JSON.stringify(tuple))), tuple);
  }
  const caveated = parseTuple('object:b/k#reader@user:amy[ip_allowlist:0123456789abcdef:{"allowed":["1.2.3.4/32"]}]');
  t.deepEqual(caveated.caveat, { name: 'ip_allowlist', hash: '0123456789abcdef', context: { allowed: ['1.2.3.4/32'] } });
  t.is(formatTuple(caveated), 'object:b/k#reader@user:amy[ip_allowlist:0123456789abcdef:{"allowed":["1.2.3.4/32"]}]');
  // SpiceDB's forms: no hash, caveat then expiration; offsets normalize to UTC.
  const spice = parseTuple('acme/doc:d#viewer@acme/user:amy[acme/ok:{"n":2}][expiration:2026-12-31T01:00:00+01:00]');
  t.deepEqual(spice, { resource: { type: 'acme/doc', id: 'd' }, relation: 'viewer', subject: { type: 'acme/user', id: 'amy' }, caveat: { name: 'acme/ok', context: { n: 2 } }, expiration: '2026-12-31T00:00:00Z' });
  t.is(formatSpiceDbTuple(spice), 'acme/doc:d#viewer@acme/user:amy[acme/ok:{"n":2}][expiration:2026-12-31T00:00:00Z]');
  t.deepEqual(parseTuple(formatTuple(spice)), spice);
  t.deepEqual(tupleFromJson(JSON.parse(JSON.stringify(spice))), spice);
  t.deepEqual(parseTuple('doc:d#viewer@user:amy#...').subject, { type: 'user', id: 'amy' });
  t.deepEqual(parseTuple('doc:d#viewer@user:amy[ok]').caveat, { name: 'ok' });
  t.deepEqual(parseTuple('bucket:b#reader@user:*').subject, { type: 'user', id: '*' });
  t.deepEqual(parseTuple('bucket:b#reader@user:%2A').subject, { type: 'user', id: '*' });
  for (const bad of ['bucket:b#reader', 'bucket:b c#reader@user:a', 'bucket:b#reader@user:a@x', 'bucket:b#reader@user:a[c:zz]', 'bucket:%ZZ#reader@user:a',
    'b:b#r@u:a[expiration:2026-12-31]', 'b:b#r@u:a[expiration:tomorrow]', 'b:b#r@u:a[expiration:2026-12-31T00:00:00Z][c]', 'a//b:x#r@u:a']) {
    t.throws(() => parseTuple(bad), { instanceOf: TupleValidationError }, bad);
  }
});

test('tuples are validated against the schema and never stored when invalid', (t) => {
  const { rel } = setup(t);
  const refused = (tuple: string, message: RegExp): void => {
    t.throws(() => rel.write('acme', [{ op: 'touch', tuple }], AUDIT), { message }, tuple);
  };
  refused('nope:x#reader@user:a', /unknown type "nope"/);
  refused('bucket:b#read@user:a', /is a permission/);
  refused('bucket:b#writer@user:*', /not allowed/);
  refused('group:g#member@user:a[ip_allowlist:0000000000000000]', /caveat ip_allowlist not allowed/);
  refused('bucket:b#owner@user:a[expiration:2300-01-01T00:00:00Z]', /does not allow expiration for user/);
  refused('bucket:b#reader@user:*[expiration:2300-01-01T00:00:00Z]', /does not allow expiration for user/);
  refused('bucket:b#reader@user:a[ip_allowlist:0000000000000000]', /invalid caveat hash/);
  const hash = compileSchema(DEFAULT_OBJECT_SCHEMA).caveats.get('ip_allowlist')?.hash;
  refused(`bucket:b#reader@user:a[ip_allowlist:${hash}:{"client_ip":"1.2.3.4"}]`, /may not set client_ip/);
  refused(`bucket:b#reader@user:a[ip_allowlist:${hash}:{"allowed":"x"}]`, /must be list<string>/);
  refused(`bucket:b#reader@user:a[ip_allowlist:{"allowed":"x"}]`, /must be list<string>/);
  t.deepEqual(rel.store.readTuples('acme', { resourceType: 'bucket' }), []);
  t.throws(() => rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#owner@user:a' }], { actor: 'x', reason: '' }), { message: /reason/ });
});

test('a batch with a failing precondition writes nothing; revision tokens increase', (t) => {
  const { rel } = setup(t);
  const r1 = rel.write('acme', [{ op: 'create', tuple: 'bucket:b#owner@user:amy' }], AUDIT);
  t.throws(
    () =>
      rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:bob' }], {
        ...AUDIT,
        preconditions: [{ op: 'must_exist', filter: { resourceType: 'bucket', resourceId: 'b', relation: 'writer' } }],
      }),
    { instanceOf: PreconditionFailedError },
  );
  t.throws(() => rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:bob' }, { op: 'create', tuple: 'bucket:b#owner@user:amy' }], AUDIT), {
    instanceOf: PreconditionFailedError,
  });
  t.is(rel.check('acme', 'bucket:b', 'read', 'user:bob').result, 'denied');
  const r2 = rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:bob' }], {
    ...AUDIT,
    preconditions: [{ op: 'must_exist', filter: { resourceType: 'bucket', resourceId: 'b', subjectId: 'amy' } }, { op: 'must_not_exist', filter: { resourceType: 'bucket', relation: 'writer' } }],
  });
  t.true(decodeRevision(r2) > decodeRevision(r1));
  t.is(rel.check('acme', 'bucket:b', 'read', 'user:bob').result, 'allowed');
  t.throws(() => decodeRevision('garbage'));
});

test('a delete is visible to a second store on the same directory at its next check', (t) => {
  const { dir, rel } = setup(t);
  const other = Relationships.open({ dataDir: dir });
  t.teardown(() => other.close());
  rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:bob' }], AUDIT);
  for (let i = 0; i < 3; i++) t.is(other.check('acme', 'bucket:b', 'read', 'user:bob').result, 'allowed');
  rel.write('acme', [{ op: 'delete', tuple: 'bucket:b#reader@user:bob' }], AUDIT);
  t.is(other.check('acme', 'bucket:b', 'read', 'user:bob').result, 'denied');
  t.is(other.check('other-tenant', 'bucket:b', 'read', 'user:bob').result, 'denied');
});

test('an import with one bad line imports nothing and reports it; a good one leaves a source record', (t) => {
  const { rel } = setup(t);
  const bad = '# owners\nbucket:b#owner@user:amy\n\nbucket:b#reader@nope:x\nbucket:b#writer@user:bob\n';
  const error = t.throws(() => rel.importTuples('acme', bad, AUDIT), { instanceOf: ImportError }) as ImportError;
  t.deepEqual(error.lines.map((l) => l.line), [4]);
  t.is(rel.check('acme', 'bucket:b', 'write', 'user:amy').result, 'denied');
  const good = bad.replace('bucket:b#reader@nope:x\n', '');
  const source = rel.importTuples('acme', good, { ...AUDIT, name: 'owners.txt' });
  t.like(source, { name: 'owners.txt', count: 2, actor: 'operator', reason: 'test' });
  t.regex(source.digest, /^[0-9a-f]{64}$/);
  t.deepEqual(rel.store.importSources('acme').map((s) => s.id), [source.id]);
  t.is(rel.check('acme', 'bucket:b', 'write', 'user:amy').result, 'allowed');
});

test('tenant applications cannot escalate or leave their scope', (t) => {
  const { rel } = setup(t);
  const app = 'app:AKIAAPP';
  rel.write('acme', [
    { op: 'touch', tuple: 'group:eng#member@app:AKIAAPP' },
    { op: 'touch', tuple: 'group:all#member@group:eng#member' },
    { op: 'touch', tuple: 'bucket:b#writer@app:AKIAAPP' },
  ], AUDIT);
  const scope = { tenant: 'acme', writer: app, namespaces: ['object', 'group', 'folder'], relations: ['reader', 'member', 'parent'] };
  const attempt = (tuple: string, op: 'touch' | 'delete' = 'touch', tenant = 'acme') =>
    t.throws(() => rel.write(tenant, [{ op, tuple }], { ...AUDIT, actor: app, scope }), { instanceOf: DeniedError }, tuple);
  attempt('object:b/k#reader@app:AKIAAPP');
  attempt('object:b/k#reader@group:all#member');
  attempt('group:admins#member@group:eng#member');
  attempt('bucket:b#reader@user:amy');
  attempt('object:b/k#owner@user:amy');
  attempt('object:b/k#reader@user:amy', 'touch', 'other');
  t.throws(() => rel.writeSchema('acme', DEFAULT_OBJECT_SCHEMA, { ...AUDIT, scope }), { instanceOf: DeniedError });
  t.notThrows(() => rel.write('acme', [{ op: 'touch', tuple: 'object:b/k#reader@user:amy' }], { ...AUDIT, actor: app, scope }));
  t.is(rel.check('acme', 'object:b/k', 'read', 'user:amy').result, 'allowed');
});

test('an application cannot link a resource under a userset whose object it controls: arrows walk usersets too', (t) => {
  const { rel } = setup(t);
  rel.writeSchema('acme', `definition app {}
    definition team {
      relation member: app
      relation manager: app
      permission manage = manager
    }
    definition doc {
      relation owners: team#member
      relation viewer: app
      permission view = viewer + owners->manage
    }`, AUDIT);
  rel.write('acme', [{ op: 'touch', tuple: 'team:t#manager@app:AKIAAPP' }], AUDIT);
  const scope = { tenant: 'acme', writer: 'app:AKIAAPP', namespaces: ['doc'], relations: ['owners'] };
  // The writer is no member of team:t, but the arrow would walk team:t, where it is a manager.
  t.throws(() => rel.write('acme', [{ op: 'touch', tuple: 'doc:d#owners@team:t#member' }], { ...AUDIT, actor: 'app:AKIAAPP', scope }), { instanceOf: DeniedError, message: /links a resource under team:t/ });
  t.is(rel.check('acme', 'doc:d', 'view', 'app:AKIAAPP').result, 'denied');
});

test('under .all() deleting a tuple can grant, so an application deleting one must hold what it guards', (t) => {
  const { rel } = setup(t);
  rel.writeSchema('acme', `definition app {}
    definition group { relation member: app }
    definition folder {
      relation clearance: group
      permission read = clearance.all(member)
    }`, AUDIT);
  rel.write('acme', [
    { op: 'touch', tuple: 'group:finance#member@app:AKIAAPP' },
    { op: 'touch', tuple: 'folder:f#clearance@group:finance' },
    { op: 'touch', tuple: 'folder:f#clearance@group:legal' },
  ], AUDIT);
  const scope = { tenant: 'acme', writer: 'app:AKIAAPP', namespaces: ['folder'], relations: ['clearance'] };
  t.is(rel.check('acme', 'folder:f', 'read', 'app:AKIAAPP').result, 'denied');
  t.throws(() => rel.write('acme', [{ op: 'delete', tuple: 'folder:f#clearance@group:legal' }], { ...AUDIT, actor: 'app:AKIAAPP', scope }), {
    instanceOf: DeniedError, message: /does not hold read on folder:f itself/,
  });
  t.is(rel.check('acme', 'folder:f', 'read', 'app:AKIAAPP').result, 'denied');
});

test('changesSince returns ordered events of one tenant only', (t) => {
  const { rel } = setup(t);
  rel.writeSchema('other', DEFAULT_OBJECT_SCHEMA, AUDIT);
  const start = rel.changesSince('acme', '').at(-1)?.revision ?? '';
  rel.write('acme', [{ op: 'create', tuple: 'bucket:b#owner@user:amy' }], AUDIT);
  rel.write('other', [{ op: 'touch', tuple: 'bucket:b#owner@user:eve' }], AUDIT);
  rel.write('acme', [{ op: 'touch', tuple: 'bucket:b#reader@user:bob' }, { op: 'delete', tuple: 'bucket:b#owner@user:amy' }], AUDIT);
  const events = rel.changesSince('acme', start);
  t.deepEqual(events.map((e) => `${e.kind} ${e.tuple ? formatTuple(e.tuple) : ''}`), [
    'tuple.create bucket:b#owner@user:amy',
    'tuple.touch bucket:b#reader@user:bob',
    'tuple.delete bucket:b#owner@user:amy',
  ]);
  const revisions = events.map((e) => decodeRevision(e.revision));
  t.deepEqual(revisions, [...revisions].sort((a, b) => a - b));
  t.is(rel.changesSince('acme', start, { limit: 1 }).length, 1);
  t.deepEqual(rel.changesSince('acme', '').slice(0, 2).map((e) => e.kind), ['schema.write', 'caveat.write']);
  const audit = rel.store.auditRecords('acme', { since: start });
  t.like(audit[0], { actor: 'operator', reason: 'test', requestId: 'req-1' });
});

test('listing filters and lookups use implicit parents and tuples', (t) => {
  const { rel } = setup(t);
  rel.write('acme', [
    { op: 'touch', tuple: 'folder:b/pub/#reader@user:amy' },
    { op: 'touch', tuple: 'object:b/priv/x#reader@user:amy' },
  ], AUDIT);
  const keys = ['b/pub/1', 'b/pub/2', 'b/pub/deep/3', 'b/priv/x', 'b/priv/y', 'b/other'];
  t.deepEqual(rel.filterResources('acme', 'object', keys, 'read', 'user:amy'), ['b/pub/1', 'b/pub/2', 'b/pub/deep/3', 'b/priv/x']);
  t.deepEqual(rel.lookupResources('acme', 'object', 'read', 'user:amy', { idPrefix: 'b/priv/' }), ['b/priv/x']);
  t.deepEqual(rel.lookupSubjects('acme', 'object:b/pub/9', 'read', 'user'), ['amy']);
});
