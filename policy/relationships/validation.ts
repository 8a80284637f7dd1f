/**
 * Runs a zed validation file (https://authzed.com/docs/spicedb/modeling/validation-testing-debugging#zed-validate;
 * pkg/validationfile in SpiceDB) against this engine: `schema` (or `schemaFile`), `relationships` (one per line,
 * `//` comments), `assertions` (`assertTrue`, `assertFalse`, `assertCaveated`, each `tuple` or
 * `tuple with {"context": …}`) and `validation` (expected relations: `[subject] is <type:id#relation>`). Each failure
 * names its line and, for assertions, the path that decided the check. The file is loaded into a scratch store that
 * is removed afterwards. An optional `anvil:` block (ignored by zed) holds what only this engine has:
 * `implicitParents: s3`, `maxDepth`, and `schemaAfter` (a schema written after the relationships).
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { PolicyDatabase } from '../database/policy-database.ts';
import { ImportError, SchemaValidationError } from './errors.ts';
import { expand, subjectLabel } from './expand.ts';
import { Relationships, s3ParentOf } from './relationships.ts';
import type { CompiledSchema } from './schema.ts';
import { parseSubject, parseTuple, type Tuple } from './tuples.ts';

/** One failed check of a validation file. */
export interface ValidationFailure {
  kind: 'file' | 'schema' | 'relationship' | 'assertion' | 'expected';
  /** 1-based line in the file, when known. */
  line?: number;
  message: string;
  /** For assertions: the granting path, or the reason it was not granted. */
  path?: string[];
}

/** What a run found. */
export interface ValidationReport {
  relationships: number;
  assertions: number;
  expected: number;
  failures: ValidationFailure[];
  /** Schema warnings (what SpiceDB's linter reports); they do not fail the file. */
  warnings: string[];
}

/** How to run a file: `dir` resolves `schemaFile`; `clock` decides expiry (Date.now by default). */
export interface ValidationOptions {
  dir?: string;
  clock?: () => number;
}

type Expected = 'allowed' | 'denied' | 'conditional';
const ASSERTIONS: Record<string, Expected> = { assertTrue: 'allowed', assertFalse: 'denied', assertCaveated: 'conditional' };
const AUDIT = { actor: 'anvil:validate', reason: 'validation file' };

/**
 * The `anvil:` block, declared with zod so a mistyped or misspelt setting is a failure naming its line instead of
 * being ignored (a CI gate must not pass a file whose settings were dropped). maxDepth is a positive whole number of
 * hops, as the engine's depth limit.
 */
const EXTENSION = z.strictObject({
  implicitParents: z.literal('s3').optional(),
  maxDepth: z.number().int().min(1).max(10_000).optional(),
  schemaAfter: z.string().optional(),
});

/** Reads and runs a validation file; never throws for problems in the file, which become failures. */
export async function runValidationFile(text: string, options: ValidationOptions = {}): Promise<ValidationReport> {
  const report: ValidationReport = { relationships: 0, assertions: 0, expected: 0, failures: [], warnings: [] };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (node: unknown): number | undefined => {
    const range = (node as YamlNode | undefined)?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  const fail = (f: ValidationFailure): ValidationReport => (report.failures.push(f), report);
  if (doc.errors.length > 0) return fail({ kind: 'file', line: doc.errors[0]!.linePos?.[0].line, message: doc.errors[0]!.message });
  if (!isMap(doc.contents)) return fail({ kind: 'file', message: 'a validation file is a YAML mapping (schema, relationships, assertions, validation)' });
  const top = doc.contents;
  const value = (key: string): unknown => top.get(key, true);
  const anvilNode = value('anvil');
  const parsedExtension = EXTENSION.safeParse((doc.toJS() as { anvil?: unknown }).anvil ?? {});
  if (!parsedExtension.success) {
    for (const issue of parsedExtension.error.issues) {
      // The line of the offending setting when there is one (`maxDepth: -5`), else of the block.
      const key = issue.path[0] ?? (issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined);
      const at = isMap(anvilNode) && key !== undefined ? anvilNode.items.find((p) => isScalar(p.key) && p.key.value === key)?.key : anvilNode;
      const where = key === undefined ? '' : `\`${String(key)}\`: `;
      fail({ kind: 'file', line: lineOf(at ?? anvilNode), message: `anvil block: ${where}${issue.message}` });
    }
    return report;
  }
  const extension = parsedExtension.data;

  let schema = stringOf(value('schema'));
  const schemaFile = stringOf(value('schemaFile'));
  if (schema === undefined && schemaFile !== undefined) {
    try {
      schema = readFileSync(resolve(options.dir ?? '.', schemaFile), 'utf8');
    } catch (error) {
      return fail({ kind: 'file', line: lineOf(value('schemaFile')), message: `cannot read schemaFile ${schemaFile}: ${(error as Error).message}` });
    }
  }
  if (schema === undefined) return fail({ kind: 'file', message: 'the file has no schema (schema: | … or schemaFile: path)' });

  const implicitParents = extension.implicitParents === 's3' ? s3ParentOf : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'anvil-validate-'));
  const database = await PolicyDatabase.open({ dataDir: dir });
  const rel = Relationships.open({
    database,
    gcIntervalMs: 0,
    clock: options.clock,
    maxDepth: extension.maxDepth,
    implicitParents: implicitParents ?? (() => []),
  });
  try {
    const schemaLine = lineOf(value('schema')) ?? lineOf(value('schemaFile'));
    try {
      await rel.writeSchema('validate', schema, AUDIT);
    } catch (error) {
      if (!(error instanceof SchemaValidationError)) throw error;
      for (const message of error.errors) fail({ kind: 'schema', line: schemaLine, message });
      return report;
    }
    report.warnings = (await rel.store.schema('validate'))?.warnings ?? [];
    if (!(await loadRelationships(rel, value('relationships'), text, lineOf, report))) return report;
    if (extension.schemaAfter !== undefined) await rel.writeSchema('validate', extension.schemaAfter, AUDIT);
    await runAssertions(rel, value('assertions'), lineOf, report);
    await runExpected(rel, value('validation'), lineOf, report, { clock: options.clock ?? Date.now, implicitParents });
    return report;
  } finally {
    rel.close();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a validation file from disk (schemaFile relative to it) and runs it. */
export function runValidationPath(path: string, options: Omit<ValidationOptions, 'dir'> = {}): Promise<ValidationReport> {
  return runValidationFile(readFileSync(path, 'utf8'), { ...options, dir: dirname(path) });
}

function stringOf(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
}

/** A YAML block that may be written inline or as a string holding YAML (the playground's export does the latter). */
function blockOf(node: unknown): { node: unknown } {
  const text = stringOf(node);
  return { node: text === undefined ? node : parseDocument(text).contents };
}

async function loadRelationships(rel: Relationships, node: unknown, text: string, lineOf: (n: unknown) => number | undefined, report: ValidationReport): Promise<boolean> {
  const block = stringOf(node) ?? '';
  const start = lineOf(node) ?? 0;
  const seen = new Map<string, number>();
  const lines: string[] = [];
  let searchFrom = (node as YamlNode | undefined)?.range?.[0] ?? 0;
  for (const raw of block.split('\n')) {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('//')) continue;
    // The line of this relationship in the file: found where it is written, after the previous one.
    const at = text.indexOf(trimmed, searchFrom);
    const line = at >= 0 ? text.slice(0, at).split('\n').length : start;
    if (at >= 0) searchFrom = at + trimmed.length;
    let tuple: Tuple;
    try {
      tuple = parseTuple(trimmed);
    } catch (error) {
      report.failures.push({ kind: 'relationship', line, message: `error parsing relationship \`${trimmed}\`: ${(error as Error).message}` });
      continue;
    }
    const identity = `${tuple.resource.type}:${tuple.resource.id}#${tuple.relation}@${tuple.subject.type}:${tuple.subject.id}#${tuple.subject.relation ?? ''}`;
    if (seen.has(identity)) report.failures.push({ kind: 'relationship', line, message: `found repeated relationship \`${trimmed}\`` });
    seen.set(identity, line);
    lines.push(trimmed);
  }
  if (report.failures.length > 0) return false;
  report.relationships = lines.length;
  if (lines.length === 0) return true;
  try {
    await rel.importTuples('validate', lines.join('\n'), AUDIT);
  } catch (error) {
    if (!(error instanceof ImportError)) throw error;
    const lineNumbers = [...seen.values()];
    for (const bad of error.lines) report.failures.push({ kind: 'relationship', line: lineNumbers[bad.line - 1], message: bad.error });
    return false;
  }
  return true;
}

async function runAssertions(rel: Relationships, node: unknown, outerLineOf: (n: unknown) => number | undefined, report: ValidationReport): Promise<void> {
  const { node: block } = blockOf(node);
  // Inside a block written as a string, positions are the string's: name the block's line instead.
  const lineOf = stringOf(node) === undefined ? outerLineOf : () => outerLineOf(node);
  if (block === undefined || block === null) return;
  if (!isMap(block)) {
    report.failures.push({ kind: 'file', line: lineOf(node), message: 'assertions must map assertTrue / assertFalse / assertCaveated to lists' });
    return;
  }
  for (const pair of block.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const expected = ASSERTIONS[key];
    if (!expected) {
      report.failures.push({ kind: 'file', line: lineOf(pair.key), message: `unexpected key \`${key}\` in assertions` });
      continue;
    }
    // As zed: a block is a list of strings; anything else fails (skipping it would pass a failing model).
    if (!isSeq(pair.value)) {
      if (pair.value !== null && !(isScalar(pair.value) && pair.value.value === null)) {
        report.failures.push({ kind: 'file', line: lineOf(pair.value) ?? lineOf(pair.key), message: `\`${key}\` must be a list of relationships` });
      }
      continue;
    }
    for (const item of pair.value.items) {
      report.assertions++;
      if (stringOf(item) === undefined) {
        report.failures.push({ kind: 'file', line: lineOf(item) ?? lineOf(pair.key), message: `each entry of \`${key}\` must be a relationship string` });
        continue;
      }
      await runAssertion(rel, key, expected, stringOf(item)!, lineOf(item), report);
    }
  }
}

async function runAssertion(rel: Relationships, key: string, expected: Expected, text: string, line: number | undefined, report: ValidationReport): Promise<void> {
  const withAt = text.indexOf(' with ');
  const relationship = (withAt < 0 ? text : text.slice(0, withAt)).trim();
  let context: Record<string, unknown> = {};
  try {
    if (withAt >= 0) context = JSON.parse(text.slice(withAt + 6)) as Record<string, unknown>;
    if (typeof context !== 'object' || context === null || Array.isArray(context)) throw new Error('not an object');
  } catch (error) {
    report.failures.push({ kind: 'assertion', line, message: `error parsing caveat context in assertion \`${text}\`: ${(error as Error).message}` });
    return;
  }
  let q: Tuple;
  try {
    q = parseTuple(relationship);
  } catch (error) {
    report.failures.push({ kind: 'assertion', line, message: `error parsing relationship in assertion \`${text}\`: ${(error as Error).message}` });
    return;
  }
  const problem = q.caveat || q.expiration ? `cannot specify a caveat or expiration on an assertion: \`${relationship}\`` : unknownName((await rel.store.schema('validate'))!, q);
  if (problem) {
    report.failures.push({ kind: 'assertion', line, message: problem });
    return;
  }
  const got = await rel.explain('validate', q.resource, q.relation, q.subject, { context });
  if (got.result === expected) return;
  const path = got.result === 'denied' ? [got.reason] : (got.path ?? []);
  const missing = got.missing?.length ? ` (missing context: ${got.missing.join(', ')})` : '';
  report.failures.push({ kind: 'assertion', line, message: `${key} failed: \`${relationship}\` is ${got.result}${missing}`, path });
}

/** SpiceDB refuses assertions about definitions, relations or subject types the schema does not have. */
function unknownName(schema: CompiledSchema, q: Tuple): string | undefined {
  const def = schema.definitions.get(q.resource.type);
  if (!def) return `object definition \`${q.resource.type}\` not found`;
  if (!def.relations.has(q.relation) && !def.permissions.has(q.relation)) return `relation/permission \`${q.relation}\` not found under definition \`${q.resource.type}\``;
  const subject = schema.definitions.get(q.subject.type);
  if (!subject) return `object definition \`${q.subject.type}\` not found`;
  const srel = q.subject.relation;
  if (srel !== undefined && !subject.relations.has(srel) && !subject.permissions.has(srel)) return `relation/permission \`${srel}\` not found under definition \`${q.subject.type}\``;
  return undefined;
}

async function runExpected(
  rel: Relationships,
  node: unknown,
  lineOf: (n: unknown) => number | undefined,
  report: ValidationReport,
  how: { clock: () => number; implicitParents?: typeof s3ParentOf },
): Promise<void> {
  const { node: block } = blockOf(node);
  const outerLineOf = lineOf;
  lineOf = stringOf(node) === undefined ? outerLineOf : () => outerLineOf(node);
  if (block === undefined || block === null) return;
  if (!isMap(block)) {
    report.failures.push({ kind: 'file', line: lineOf(node), message: 'validation must map `type:id#relation` to lists of expected subjects' });
    return;
  }
  const schema = (await rel.store.schema('validate'))!;
  for (const pair of block.items) {
    const onr = isScalar(pair.key) ? String(pair.key.value) : '';
    const keyLine = lineOf(pair.key);
    const hash = onr.lastIndexOf('#');
    let resource;
    try {
      if (hash < 0) throw new Error('missing #relation');
      resource = parseSubject(onr.slice(0, hash));
    } catch (error) {
      report.failures.push({ kind: 'expected', line: keyLine, message: `could not parse ${onr}: ${(error as Error).message}` });
      continue;
    }
    if (!isSeq(pair.value) && pair.value !== null && !(isScalar(pair.value) && pair.value.value === null)) {
      report.failures.push({ kind: 'file', line: lineOf(pair.value) ?? keyLine, message: `expected subjects of \`${onr}\` must be a list` });
      continue;
    }
    report.expected++;
    const found = await expand({ tenant: 'validate', reader: rel.store.reader(), schema, now: how.clock(), implicitParents: how.implicitParents }, resource, onr.slice(hash + 1));
    const listed = new Set<string>();
    for (const item of isSeq(pair.value) ? pair.value.items : []) {
      const text = stringOf(item) ?? '';
      const line = lineOf(item) ?? keyLine;
      const parsed = parseExpected(text);
      if (!parsed) {
        report.failures.push({ kind: 'expected', line, message: `For object and permission/relation \`${onr}\`, no expected subject specified in \`${text}\`` });
        continue;
      }
      listed.add(parsed.subject);
      const f = found.get(parsed.subject);
      if (!f) {
        report.failures.push({ kind: 'expected', line, message: `For object and permission/relation \`${onr}\`, missing expected subject \`${parsed.subject}\`` });
        continue;
      }
      const computed = [...f.relationships].sort();
      if (computed.join('/') !== [...parsed.relationships].sort().join('/')) {
        report.failures.push({ kind: 'expected', line, message: `For object and permission/relation \`${onr}\`, found different relationships for subject \`${parsed.subject}\`: Specified: \`${parsed.relationships.map((r) => `<${r}>`).join('/')}\`, Computed: \`${computed.map((r) => `<${r}>`).join('/')}\`` });
      }
      if (subjectLabel(f) !== parsed.label) {
        report.failures.push({ kind: 'expected', line, message: `For object and permission/relation \`${onr}\`, subject \`${parsed.label}\` was computed as \`${subjectLabel(f)}\` (caveat or exclusions differ)` });
      }
    }
    for (const f of found.values()) {
      if (!listed.has(f.subject)) report.failures.push({ kind: 'expected', line: keyLine, message: `For object and permission/relation \`${onr}\`, subject \`${subjectLabel(f)}\` found but missing from specified` });
    }
  }
}

/** `[user:amy] is <doc:1#viewer>/<group:g#member>`, `[user:amy[...]] …`, `[user:* - {user:bob}] …`. */
function parseExpected(text: string): { subject: string; label: string; relationships: string[] } | undefined {
  const open = text.indexOf('[');
  const close = text.lastIndexOf(']', text.indexOf('<') < 0 ? text.length : text.indexOf('<'));
  if (open < 0 || close <= open) return undefined;
  const inner = text.slice(open + 1, close).trim();
  const m = /^([^\]\s[]+)(\[\.\.\.\])?(?:\s+-\s+\{([^}]+)\})?$/.exec(inner);
  if (!m) return undefined;
  const excluded = (m[3] ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '').sort();
  const subject = m[1]!.replace(/#\.\.\.$/, '');
  const label = `${subject}${m[2] ?? ''}${excluded.length > 0 ? ` - {${excluded.join(', ')}}` : ''}`;
  const relationships = [...text.slice(close).matchAll(/<([^>]+)>/g)].map((r) => r[1]!);
  return { subject, label, relationships };
}

/**
 * The report as `zed validate` prints it: `Success! - N relationships loaded, N assertions run, N expected relations
 * validated`, or each failure as `FILE:LINE: message` with the deciding path indented beneath; warnings first.
 */
export function formatValidationReport(report: ValidationReport, file: string): string {
  const lines = report.warnings.map((w) => `warning: ${w}`);
  for (const f of report.failures) {
    lines.push(`${file}:${f.line ?? '?'}: ${f.message}`);
    for (const step of f.path ?? []) lines.push(`    ${step}`);
  }
  const counts = `${report.relationships} relationships loaded, ${report.assertions} assertions run, ${report.expected} expected relations validated`;
  lines.push(report.failures.length === 0 ? `Success! - ${counts}` : `${report.failures.length} failure(s) - ${counts}`);
  return lines.join('\n') + '\n';
}
