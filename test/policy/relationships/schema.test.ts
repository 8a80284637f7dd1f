/**
 * The relationship schema language, tuple forms and backup parsing, which need no store: schema errors and
 * warnings, the parser's SpiceDB features, schemaDiff's judgements, tuple string and JSON forms.
 */
import test from 'ava';
import {
  compileSchema,
  DEFAULT_OBJECT_SCHEMA,
  formatSpiceDbTuple,
  formatTuple,
  parseBackup,
  parseTuple,
  schemaDiff,
  tupleFromJson,
  TupleValidationError,
  type SchemaValidationError,
  type Tuple,
} from '../../../policy/relationships/index.ts';

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
  // An escape never spells the wildcard: the stored id "*" could not be told from user:* (issue 9).
  for (const spelled of ['bucket:b#reader@user:%2A', 'bucket:b#reader@user:%2a', 'bucket:%2A#reader@user:a', 'bucket:b#reader@group:*#member']) {
    t.throws(() => parseTuple(spelled), { instanceOf: TupleValidationError }, spelled);
  }
  t.throws(() => tupleFromJson({ resource: { type: 'bucket', id: '*' }, relation: 'reader', subject: { type: 'user', id: 'a' } }), { instanceOf: TupleValidationError });
  t.deepEqual(tupleFromJson({ resource: { type: 'bucket', id: 'b' }, relation: 'reader', subject: { type: 'user', id: '%2A' } }).subject, { type: 'user', id: '%2A' });
  for (const bad of ['bucket:b#reader', 'bucket:b c#reader@user:a', 'bucket:b#reader@user:a@x', 'bucket:b#reader@user:a[c:zz]', 'bucket:%ZZ#reader@user:a',
    'b:b#r@u:a[expiration:2026-12-31]', 'b:b#r@u:a[expiration:tomorrow]', 'b:b#r@u:a[expiration:2026-12-31T00:00:00Z][c]', 'a//b:x#r@u:a']) {
    t.throws(() => parseTuple(bad), { instanceOf: TupleValidationError }, bad);
  }
});

test('zed backup parse-relationships lines become tuple lines; comments stay', (t) => {
  t.deepEqual(parseBackup('doc:1 viewer user:amy[c:{"a": 1}]\n// note\ndoc:2#viewer@user:bob'), {
    relationships: 'doc:1#viewer@user:amy[c:{"a": 1}]\n// note\ndoc:2#viewer@user:bob',
  });
});
