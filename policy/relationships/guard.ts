/**
 * The tenant-application write guard: an app with tuples:write writes only inside its tenant, only the namespaces and
 * relations its scope names, never schemas or caveats, and never a tuple that would enlarge its own authority.
 */

import { DeniedError } from '../errors.ts';
import type { RelationshipEngine } from './engine.ts';
import { leaves } from './schema.ts';
import type { PermissionExpr } from './schema-parser.ts';
import type { WriteOptions } from './store.ts';
import { formatTuple, parseSubject, type SubjectRef, type Tuple } from './tuples.ts';

/** What a tenant application may write; the gateway builds it from the credential's scope. */
export interface AppScope {
  tenant: string;
  /** The writer as a subject, e.g. `app:AKIA…`. */
  writer: SubjectRef | string;
  /** Resource types it may write; absent means any. */
  namespaces?: string[];
  /** Relations it may write; absent means any. */
  relations?: string[];
}

const refuse = (reason: string): never => {
  throw new DeniedError('relationship', reason);
};

/**
 * The store guard for an application's batch. Refused: a subject that is the writer, a userset the writer is
 * (transitively, or conditionally) in, a wildcard of the writer's type, an object the writer holds anything on when
 * written into a relation arrows walk (linking a resource under something the writer controls), and deleting the
 * writer out of a relation used on the excluded side of `-`.
 */
export function appWriteGuard(engine: RelationshipEngine, tenant: string, scope: AppScope): NonNullable<WriteOptions['guard']> {
  if (scope.tenant !== tenant) refuse(`applications of tenant ${scope.tenant} cannot write tuples of tenant ${tenant}`);
  const writer = typeof scope.writer === 'string' ? parseSubject(scope.writer) : scope.writer;
  return (updates, schema) => {
    const state = engine.begin(tenant);
    if (!state) return;
    const covers = (subject: SubjectRef): boolean => {
      if (subject.relation === undefined) return subject.type === writer.type && (subject.id === writer.id || subject.id === '*');
      return engine.evaluate(state, { type: subject.type, id: subject.id }, subject.relation, writer).result !== 'denied';
    };
    for (const { op, tuple } of updates) {
      const label = formatTuple(tuple);
      if (scope.namespaces && !scope.namespaces.includes(tuple.resource.type)) refuse(`${label}: namespace ${tuple.resource.type} is outside the application's scope`);
      if (scope.relations && !scope.relations.includes(tuple.relation)) refuse(`${label}: relation ${tuple.relation} is outside the application's scope`);
      const def = schema.definitions.get(tuple.resource.type);
      const exprs = [...(def?.permissions.values() ?? [])];
      if (op === 'delete') {
        if (exprs.some((e) => excludedRefs(e).includes(tuple.relation)) && covers(tuple.subject)) refuse(`${label}: deleting it would lift an exclusion on the writer`);
        continue;
      }
      if (covers(tuple.subject)) refuse(`${label}: would enlarge the writer's own authority`);
      const arrowBase = exprs.some((e) => leaves(e).some((l) => l.kind === 'arrow' && l.relation === tuple.relation));
      if (arrowBase && tuple.subject.relation === undefined && holdsAnything(engine, state, tuple, writer)) {
        refuse(`${label}: links a resource under ${tuple.subject.type}:${tuple.subject.id}, on which the writer holds authority`);
      }
    }
  };
}

function holdsAnything(engine: RelationshipEngine, state: NonNullable<ReturnType<RelationshipEngine['begin']>>, tuple: Tuple, writer: SubjectRef): boolean {
  const def = state.schema.definitions.get(tuple.subject.type);
  if (!def) return false;
  const names = [...def.relations.keys(), ...def.permissions.keys()];
  return names.some((n) => engine.evaluate(state, { type: tuple.subject.type, id: tuple.subject.id }, n, writer).result !== 'denied');
}

function excludedRefs(e: PermissionExpr): string[] {
  if (e.kind === 'exclusion') return [...excludedRefs(e.left), ...leaves(e.right).map((l) => (l.kind === 'ref' ? l.name : l.relation))];
  if (e.kind === 'union' || e.kind === 'intersection') return [...excludedRefs(e.left), ...excludedRefs(e.right)];
  return [];
}
