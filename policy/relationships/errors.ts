/**
 * Neutral errors of the relationship engine and its store; all are PolicyErrors, so the gateway maps them like the
 * rest of policy/ (validation → 400, conflict/precondition → 409, escalation → 403 via DeniedError).
 */

import { ConflictError, InvalidInputError } from '../errors.ts';

/** A schema text that does not parse or does not validate; `errors` lists every problem found, with line numbers. */
export class SchemaValidationError extends InvalidInputError {
  override name = 'SchemaValidationError';
  constructor(readonly errors: string[]) {
    super(`invalid schema: ${errors.join('; ')}`);
  }
}

/** A schema change refused because existing tuples would no longer fit it; `tuples` are (up to 100 of) them. */
export class SchemaConflictError extends ConflictError {
  override name = 'SchemaConflictError';
  constructor(readonly tuples: string[], readonly total: number) {
    super(`schema change would invalidate ${total} existing tuple(s): ${tuples.slice(0, 5).join(', ')}${total > 5 ? ', …' : ''}`);
  }
}

/** A tuple that does not parse or does not fit the tenant's schema. */
export class TupleValidationError extends InvalidInputError {
  override name = 'TupleValidationError';
}

/** A write batch refused because a precondition did not hold, or a create found its tuple already there. */
export class PreconditionFailedError extends ConflictError {
  override name = 'PreconditionFailedError';
}

/** A bulk import refused because some lines are invalid; nothing was imported. */
export class ImportError extends InvalidInputError {
  override name = 'ImportError';
  constructor(readonly lines: Array<{ line: number; error: string }>) {
    super(`import refused, ${lines.length} invalid line(s): ${lines.slice(0, 5).map((l) => `line ${l.line}: ${l.error}`).join('; ')}`);
  }
}
