/**
 * Inputs that used to break the schema parser or pass silently: deep nesting (a 400 naming the line on schema write
 * and diff, a failure from `anvil schema validate`, never a stack overflow), names longer than SpiceDB allows,
 * malformed assertion and `anvil:` blocks in validation files (a failure naming the line, exit 1), and unknown query
 * parameters on the admin API's listings (400 naming them, never unfiltered rows). Real gateway and CLI processes.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relationships as rel } from '../policy/index.ts';
import { admin } from './helpers/admin.ts';
import { anvil } from './helpers/cli.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';

const deep = (levels: number) => `definition user {}\ndefinition doc {\n  relation r: user\n  permission p = ${'('.repeat(levels)}r${')'.repeat(levels)}\n}\n`;

test('unit: nesting past the limit and over-long names are schema errors naming the line; a 4,001-term union compiles', (t) => {
  t.throws(() => rel.compileSchema(deep(3000)), { instanceOf: rel.SchemaValidationError, message: /line 4: parentheses nested deeper than 100 levels/ });
  t.notThrows(() => rel.compileSchema(deep(100)));
  t.throws(() => rel.compileSchema(`definition user {}\ncaveat c(a ${'list<'.repeat(3000)}int${'>'.repeat(3000)}) { true }`), { message: /line 2: type arguments nested deeper/ });
  t.throws(() => rel.compileSchema(`definition user {}\ndefinition ${'d'.repeat(2000)} {}`), { message: /line 2: a definition name "d+…" is 2000 characters long; SpiceDB allows at most 64/ });
  t.throws(() => rel.compileSchema(`definition user {}\ndefinition doc {\n relation ${'r'.repeat(65)}: user\n}`), { message: /line 3: a relation name .* 65 characters/ });
  t.notThrows(() => rel.compileSchema(`definition user {}\ndefinition acme/${'d'.repeat(64)} {\n relation ${'r'.repeat(64)}: user\n}`));
  t.notThrows(() => rel.compileSchema(`definition user {}\ndefinition doc {\n relation r: user\n permission p = ${Array(4001).fill('r').join(' + ')}\n}`));
  t.throws(() => rel.compileSchema(`definition user {}\ndefinition doc {\n relation r: user\n permission p = ${Array(10_000).fill('r').join(' + ')}\n}`), { message: /line 4: permission expression has more than 4000 operators/ });
  // A caveat's CEL expression: member steps, parentheses, lists and ternaries nested thousands deep are refused by
  // name, never a stack overflow in the walks after parsing; 400 levels still compile.
  for (const body of ['x' + '.a'.repeat(3000) + ' == 1', '('.repeat(3000) + 'n == 1' + ')'.repeat(3000), '['.repeat(3000) + '1' + ']'.repeat(3000) + ' == []', Array.from({ length: 3000 }, (_, i) => `n == ${i} ? true : `).join('') + 'false']) {
    t.throws(() => rel.compileSchema(`definition user {}\ncaveat c(x map<any>, n int) {\n ${body}\n}`), { instanceOf: rel.SchemaValidationError, message: /line 2: caveat c: expression nests deeper than 500 levels/ });
  }
  t.notThrows(() => rel.compileSchema(`definition user {}\ncaveat c(x map<any>, n int) {\n ${'x' + '.a'.repeat(400)} == 1\n}`));
});

test('schema write and diff of a 3,000-deep schema answer 400 naming the line; the CLI validator reports it', async (t) => {
  const tg = await startTestGateway();
  const dir = mkdtempSync(join(tmpdir(), 'anvil-limits-'));
  try {
    await admin(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    for (const [method, path] of [['PUT', '/schema'], ['POST', '/schema/diff']] as const) {
      const res = await admin(tg, ROOT, method, path, { tenant: 'acme', schema: deep(3000), ...(method === 'PUT' ? { reason: 'x' } : {}) });
      t.is(res.status, 400, `${method} ${path}`);
      t.is(res.json.error.code, 'InvalidInput');
      t.regex(res.json.error.message, /line 4: parentheses nested deeper than 100 levels/);
    }
    const long = await admin(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: `definition user {}\ndefinition ${'d'.repeat(2000)} {}`, reason: 'x' });
    t.is(long.status, 400);
    const caveat = `caveat c(x map<any>) {\n ${'x' + '.a'.repeat(3000)} == 1\n}\ndefinition user {}\n`;
    for (const [method, path] of [['PUT', '/schema'], ['POST', '/schema/diff']] as const) {
      const res = await admin(tg, ROOT, method, path, { tenant: 'acme', schema: caveat, ...(method === 'PUT' ? { reason: 'x' } : {}) });
      t.is(res.status, 400, `caveat: ${method} ${path} ${JSON.stringify(res.json)}`);
      t.regex(res.json.error.message, /caveat c: expression nests deeper than 500 levels/);
    }
    // At the operator limit every walk (compile, diff, check) still fits the stack.
    const wide = `definition user {}\ndefinition doc {\n relation r: user\n relation s: user\n permission p = ${Array(4000).fill('s').join(' + ')} + r\n}`;
    t.is((await admin(tg, ROOT, 'POST', '/schema/diff', { tenant: 'acme', schema: wide })).status, 200);
    t.is((await admin(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: wide, reason: 'x' })).status, 200);
    t.is((await admin(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'x', updates: [{ op: 'touch', tuple: 'doc:1#r@user:amy' }] })).status, 200);
    const checked = await admin(tg, ROOT, 'POST', '/check', { tenant: 'acme', resource: 'doc:1', permission: 'p', subject: 'user:amy', explain: true });
    t.is(checked.status, 200, JSON.stringify(checked.json));
    t.is(checked.json.result, 'allowed');
    t.is((await admin(tg, ROOT, 'POST', '/lookup', { tenant: 'acme', resourceType: 'doc', permission: 'p', subject: 'user:amy' })).status, 200);
    t.false(tg.logs.some((l) => l.includes('Maximum call stack')), 'no stack overflow logged');

    const file = join(dir, 'deep.yaml');
    writeFileSync(file, `schema: |-\n${deep(3000).split('\n').map((l) => `  ${l}`).join('\n')}\nassertions:\n  assertTrue: []\n`);
    const run = await anvil(['schema', 'validate', file]);
    t.is(run.code, 1);
    t.regex(run.stdout, /deep\.yaml:1: line 4: parentheses nested deeper than 100 levels/);
    t.notRegex(run.stdout + run.stderr, /Maximum call stack/);
  } finally {
    await tg.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const BASE = 'schema: |-\n  definition user {}\n  definition doc { relation viewer: user }\nrelationships: |-\n  doc:1#viewer@user:a\n';
const MALFORMED: Array<[string, string, RegExp]> = [
  ['assertFalse a string', `${BASE}assertions:\n  assertFalse: "doc:1#viewer@user:a"\n`, /:7: `assertFalse` must be a list of relationships/],
  ['assertFalse a map', `${BASE}assertions:\n  assertFalse:\n    doc: "doc:1#viewer@user:a"\n`, /:8: `assertFalse` must be a list/],
  ['assertTrue a number', `${BASE}assertions:\n  assertTrue: 5\n`, /:7: `assertTrue` must be a list/],
  ['an entry not a string', `${BASE}assertions:\n  assertTrue:\n    - [doc]\n`, /:8: each entry of `assertTrue` must be a relationship string/],
  ['expected subjects not a list', `${BASE}validation:\n  doc:1#viewer: "[user:a] is <doc:1#viewer>"\n`, /:7: expected subjects of `doc:1#viewer` must be a list/],
  ['maxDepth a string', `${BASE}anvil:\n  maxDepth: "abc"\n`, /:7: anvil block: `maxDepth`: .*expected number/],
  ['maxDepth negative', `${BASE}anvil:\n  maxDepth: -5\n`, /:7: anvil block: `maxDepth`: .*>=1/],
  ['an unknown setting', `${BASE}anvil:\n  bogus: 1\n`, /:7: anvil block: `bogus`: Unrecognized key/],
];

test('validation files with malformed blocks fail naming the line (exit 1); a well-formed one still passes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-validate-shapes-'));
  try {
    for (const [name, text, expected] of MALFORMED) {
      const file = join(dir, 'v.yaml');
      writeFileSync(file, text);
      const run = await anvil(['schema', 'validate', file]);
      t.is(run.code, 1, name);
      t.regex(run.stdout, expected, name);
    }
    const good = join(dir, 'good.yaml');
    writeFileSync(good, `${BASE}anvil:\n  maxDepth: 5\nassertions:\n  assertTrue:\n    - doc:1#viewer@user:a\n  assertFalse: []\n`);
    const run = await anvil(['schema', 'validate', good]);
    t.is(run.code, 0, run.stdout + run.stderr);
    t.regex(run.stdout, /Success! .* 1 assertions run/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admin listings refuse unknown query parameters with 400 naming them; known filters still filter', async (t) => {
  const tg = await startTestGateway();
  try {
    await admin(tg, ROOT, 'POST', '/tenants', { name: 'acme' });
    t.is((await admin(tg, ROOT, 'PUT', '/schema', { tenant: 'acme', schema: 'definition user {}\ndefinition doc { relation viewer: user }', reason: 'x' })).status, 200);
    t.is((await admin(tg, ROOT, 'POST', '/tuples', { tenant: 'acme', reason: 'x', updates: [{ op: 'touch', tuple: 'doc:1#viewer@user:amy' }, { op: 'touch', tuple: 'doc:2#viewer@user:bob' }] })).status, 200);
    const filtered = await admin(tg, ROOT, 'GET', '/tuples?tenant=acme&resourceType=doc&subjectId=amy');
    t.deepEqual(filtered.json.tuples, ['doc:1#viewer@user:amy']);
    for (const path of ['/tuples?tenant=acme&resourceType=doc&subject=user:amy', '/denials?bogus=1', '/audit?actr=root', '/credentials?tenat=acme', '/tenants?x=1', '/buckets?tenant=acme']) {
      const res = await admin(tg, ROOT, 'GET', path);
      t.is(res.status, 400, path);
      t.is(res.json.error.code, 'InvalidInput', path);
      t.regex(res.json.error.message, /unknown query parameter "(subject|bogus|actr|tenat|x|tenant)"/, path);
    }
    t.is((await admin(tg, ROOT, 'GET', '/denials?tenant=acme&layer=scope&limit=5')).status, 200);
    const cli = await anvil(['denials', '--tenant', 'acme', '--layer', 'scope', '--json'], { ANVIL_ENDPOINT: tg.gw.url, AWS_ACCESS_KEY_ID: ROOT.accessKeyId, AWS_SECRET_ACCESS_KEY: ROOT.secretAccessKey });
    t.is(cli.code, 0, cli.stderr);
  } finally {
    await tg.close();
  }
});
