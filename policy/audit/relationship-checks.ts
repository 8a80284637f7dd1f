/**
 * The access audit's checks on relationships: imports that name no source, tuples no audited batch wrote, caveated
 * tuples bound to a caveat definition that is no longer deployed, tuples applications wrote that they could no longer
 * write today, and schema permissions that widened since the last audit. Pure functions over AuditFacts.
 */
import { schemaDiff } from '../relationships/schema-diff.ts';
import { formatSpiceDbTuple, formatTuple } from '../relationships/tuples.ts';
import type { AuditFacts, AuditOptions, Finding } from './types.ts';

const DAY_MS = 86_400_000;

/** Reported one by one up to this many per tenant and check; the rest are counted in one more line. */
export const MAX_TUPLE_FINDINGS = 50;

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** unsourced-import: import records whose name is empty or `-` (stdin): nobody can tell later what was loaded. */
export function unsourcedImports(facts: AuditFacts): Finding[] {
  return facts.relationships.flatMap((r) =>
    r.imports
      .filter((i) => i.name.trim() === '' || i.name === '-')
      .map((i) => ({
        id: `unsourced-import:${r.tenant}:${i.id}`, check: 'unsourced-import' as const, severity: 'medium' as const, tenant: r.tenant, subject: `import ${i.id} at ${i.revision}`,
        message: `import of ${i.count} tuple(s) by ${i.actor} at ${i.at} ("${i.reason}", sha256 ${i.digest.slice(0, 12)}…) names no source file`,
        fix: `anvil tuples import FILE --tenant ${r.tenant} --name FILE --reason ${quote(`re-import with its source (was import ${i.id})`)}`,
      })),
  );
}

/** unaudited-tuple: tuples no audited batch wrote (put into the database behind the gateway's back). */
export function unauditedTuples(facts: AuditFacts): Finding[] {
  const out: Finding[] = [];
  for (const r of facts.relationships) {
    for (const tuple of r.unaudited.tuples.slice(0, MAX_TUPLE_FINDINGS)) {
      const text = formatSpiceDbTuple(tuple);
      out.push({
        id: `unaudited-tuple:${r.tenant}:${formatTuple({ resource: tuple.resource, relation: tuple.relation, subject: tuple.subject })}`, check: 'unaudited-tuple', severity: 'high', tenant: r.tenant, subject: text,
        message: `tuple ${text} was written outside an audited batch: no change event records it`,
        fix: `anvil tuples delete ${quote(text)} --tenant ${r.tenant} --reason 'unaudited tuple'`,
      });
    }
    const more = r.unaudited.total - Math.min(r.unaudited.total, MAX_TUPLE_FINDINGS);
    if (more > 0) {
      out.push({ id: `unaudited-tuple:${r.tenant}:more`, check: 'unaudited-tuple', severity: 'high', tenant: r.tenant, subject: `${more} more tuples`, message: `${more} more tuple(s) of tenant ${r.tenant} were written outside an audited batch`, fix: `anvil tuples export --tenant ${r.tenant}` });
    }
  }
  return out;
}

/** stale-caveat: caveated tuples whose stored hash is not the deployed definition's; they fail closed. */
export function staleCaveats(facts: AuditFacts): Finding[] {
  const out: Finding[] = [];
  for (const r of facts.relationships) {
    const stale = r.caveatedTuples.filter((t) => t.caveat && r.caveatHashes.get(t.caveat.name) !== t.caveat.hash);
    for (const tuple of stale.slice(0, MAX_TUPLE_FINDINGS)) {
      const name = tuple.caveat!.name;
      const deployed = r.caveatHashes.get(name);
      const text = formatSpiceDbTuple(tuple);
      out.push({
        id: `stale-caveat:${r.tenant}:${formatTuple({ resource: tuple.resource, relation: tuple.relation, subject: tuple.subject })}`, check: 'stale-caveat', severity: 'medium', tenant: r.tenant, subject: text,
        message: `tuple ${text} was written against caveat ${name} ${tuple.caveat!.hash}, but ${deployed ? `the deployed definition is ${deployed}` : 'the caveat is no longer deployed'}: it fails closed`,
        fix: deployed
          ? `anvil tuples write ${quote(text)} --tenant ${r.tenant} --reason ${quote(`rebind to caveat ${name} ${deployed}`)}`
          : `anvil tuples delete ${quote(text)} --tenant ${r.tenant} --reason ${quote(`caveat ${name} removed`)}`,
      });
    }
    if (stale.length > MAX_TUPLE_FINDINGS) {
      out.push({ id: `stale-caveat:${r.tenant}:more`, check: 'stale-caveat', severity: 'medium', tenant: r.tenant, subject: `${stale.length - MAX_TUPLE_FINDINGS} more tuples`, message: `${stale.length - MAX_TUPLE_FINDINGS} more caveated tuple(s) of tenant ${r.tenant} fail closed`, fix: `anvil tuples export --tenant ${r.tenant}` });
    }
  }
  return out;
}

/**
 * leftover-tuple: live tuples an application wrote through the tuple write guard that the guard would refuse the same
 * writer today (it, or a maker bounding it, no longer holds what the tuple hands out, or it cannot act at all). Unlike
 * the other leftovers they do not fail closed: the tuple keeps granting its subject until it is deleted.
 */
export function leftoverTuples(facts: AuditFacts): Finding[] {
  const out: Finding[] = [];
  for (const r of facts.relationships) {
    for (const b of r.beyondWriters.slice(0, MAX_TUPLE_FINDINGS)) {
      const text = formatSpiceDbTuple(b.tuple);
      out.push({
        id: `leftover-tuple:${r.tenant}:${formatTuple({ resource: b.tuple.resource, relation: b.tuple.relation, subject: b.tuple.subject })}`, check: 'leftover-tuple', severity: 'high', tenant: r.tenant, accessKeyId: b.accessKeyId, subject: text,
        message: `tuple ${text}, written by ${b.writer} through the write guard, still grants, but the guard would refuse it today: ${b.reason}`,
        fix: `anvil tuples delete ${quote(text)} --tenant ${r.tenant} --reason ${quote(`its writer ${b.writer} no longer holds what it handed out`)}`,
      });
    }
    const more = r.beyondWriters.length - MAX_TUPLE_FINDINGS;
    if (more > 0) {
      out.push({ id: `leftover-tuple:${r.tenant}:more`, check: 'leftover-tuple', severity: 'high', tenant: r.tenant, subject: `${more} more tuples`, message: `${more} more tuple(s) of tenant ${r.tenant} were written by applications that could no longer write them`, fix: `anvil tuples prune-leftovers --tenant ${r.tenant} --reason REASON` });
    }
  }
  return out;
}

/**
 * schema-widened: permissions that more relations or subject types can grant now than under the schema deployed at
 * the baseline — the previous recorded audit run, or the window's start on a first run. A tenant that had no schema
 * then has nothing to widen.
 */
export function widenedSchemas(facts: AuditFacts, options: AuditOptions): Finding[] {
  const baseline = facts.previousRunAt ?? new Date(facts.now.getTime() - options.days * DAY_MS);
  const out: Finding[] = [];
  for (const r of facts.relationships) {
    const current = r.schemas.at(-1);
    const before = r.schemas.filter((s) => new Date(s.writtenAt) <= baseline).at(-1);
    if (current === undefined || before === undefined || before.revision === current.revision) continue;
    let diff;
    try {
      diff = schemaDiff(current.text, before.text);
    } catch {
      continue; // a schema that no longer compiles was never deployable; nothing to compare
    }
    // `changed` both widened and narrowed: what it gained is a widening all the same.
    const widened = diff.permissions.filter((x) => x.change === 'widened' || (x.change === 'changed' && x.grantedByAdded.length + x.subjectTypesAdded.length > 0));
    for (const p of widened) {
      const gained = [...p.grantedByAdded.map((g) => `granted by ${g}`), ...p.subjectTypesAdded.map((t) => `held by ${t}`)];
      out.push({
        id: `schema-widened:${r.tenant}:${p.permission}:${current.revision}`, check: 'schema-widened', severity: 'high', tenant: r.tenant, subject: p.permission,
        message: `permission ${p.permission} of tenant ${r.tenant} widened since ${baseline.toISOString()} (schema ${before.revision} → ${current.revision}): ${gained.length > 0 ? `now also ${gained.join(', ')}` : 'fewer restrictions apply'}`,
        fix: `anvil schema diff PREVIOUS.zed --tenant ${r.tenant}, then anvil schema write PREVIOUS.zed --tenant ${r.tenant} --reason ${quote(`undo widening of ${p.permission}`)}`,
      });
    }
  }
  return out;
}
