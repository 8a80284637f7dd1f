/**
 * Queries compiled once and run with new arguments. Kysely builds and compiles a query tree on every call, which for
 * the engine's point reads (several per cold check) costs more than SQLite's own index lookup; a prepared query
 * keeps Kysely's one definition of the SQL (and its dialect, and PostgreSQL's schema) and skips the rebuild.
 */
import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';

/** Anything that can run a compiled query: a Kysely instance or a transaction of it. */
export interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/**
 * Prepares `build`, a query over `arity` arguments each used as a bound parameter. The query is compiled on first use
 * with marker values in place of the arguments; each call binds its arguments where the markers were.
 */
export function prepare<A extends unknown[], R>(arity: number, build: (...args: A) => Compilable<R>): (runner: QueryRunner, ...args: A) => Promise<R[]> {
  let compiled: { sql: string; slots: Array<number | { value: unknown }> } | undefined;
  return async (runner, ...args) => {
    if (compiled === undefined) {
      const marks = Array.from({ length: arity }, (_, i) => `\u0001anvil-argument-${i}\u0001`);
      const query = build(...(marks as A)).compile();
      const slots = query.parameters.map((value) => {
        const index = marks.indexOf(value as string);
        return index >= 0 ? index : { value };
      });
      compiled = { sql: query.sql, slots };
    }
    const parameters = compiled.slots.map((slot) => (typeof slot === 'number' ? args[slot] : slot.value));
    return (await runner.executeQuery(CompiledQuery.raw(compiled.sql, parameters) as CompiledQuery<R>)).rows;
  };
}
