/**
 * What an admin handler sees (AdminCall) and the small input readers every handler uses, so each one checks its
 * JSON body and query the same way and refuses unknown fields instead of ignoring a typo.
 */
import type { Readable } from 'node:stream';
import type { AccessRecords, Decision, DenialLog, Family, PolicyStore, Principal, relationships } from '../../policy/index.ts';
import { AdminError, invalidInput } from './errors.ts';

export type { AdminTarget } from '../addressing.ts';

/** A refusal to record in the denial log (the dispatcher adds the action and the principal). */
export interface AdminRefusal {
  layer: Exclude<Decision, { allowed: true }>['layer'];
  reason: string;
  bucket?: string;
}

/**
 * The caller of a request as it stands now (its credential, session or console session resolved again: revocation,
 * expiry, maker chain, tenant disabled or locked down, narrowed scopes), or the reason it no longer stands.
 */
export type CallerNow = { ok: true; principal: Principal } | { ok: false; reason: string };

/** What a handler gets: who asks, the stores, the path parameters, the query and the JSON body. */
export interface AdminCall {
  principal: Principal;
  policy: PolicyStore;
  dataDir: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** A text/plain body, for routes that take one (`textBody`); its fields then come from the query. */
  text?: string;
  /** The relationship engine, when the gateway (or the CLI's local mode) opened one. */
  relationships?: relationships.Relationships;
  /** This node's denial log (absent in the CLI's local mode). */
  denials?: DenialLog;
  /** Which families each credential used, from where (the access audit reads them), when opened. */
  records?: AccessRecords;
  /** The gateway's request id, recorded with relationship changes. */
  requestId?: string;
  /** A request header by lower-case name (e.g. last-event-id), when the call came over HTTP. */
  header(name: string): string | undefined;
  /**
   * The caller as it stands now, for an answer that goes on after the request was authorized (the watch feed), when
   * the call came over HTTP. A stream must ask before each delivery: revocation is in force for what it sends next.
   */
  callerNow?: () => Promise<CallerNow>;
  /** Throws 403 with the decision's reason (after a denial line) unless the decision allows. */
  require(decision: Decision, where?: { bucket?: string }): void;
  /** Writes a denial line without answering 403 (for refusals that must answer like a missing thing). */
  deny(refusal: AdminRefusal): void;
}

/**
 * Who a delegation made by this caller hangs from: the caller's access key for an application credential, nothing
 * for root and the operator. What it makes is bounded by the maker's authority at every use, and dies with it.
 */
export function makerOf(principal: Principal): string | undefined {
  return principal.isRoot ? undefined : principal.accessKeyId;
}

/** One row of the admin routing table (routes.ts holds the table; handler files export their rows). */
export interface AdminRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Segments; `:name` captures one. */
  pattern: string;
  /** The action named in denial lines, e.g. `Admin:CreateCredential`. */
  action: string;
  /** Status of a success (201 for creations). */
  status?: number;
  /**
   * The query parameters a listing takes; any other is refused (400 InvalidInput naming it), so a misspelt filter
   * (`subject=` for `subjectId=`) cannot silently answer every row. Absent: the route reads no filters.
   */
  query?: readonly string[];
  /**
   * Families any one of which opens the endpoint to a non-root caller; `admin` alone when absent; none (`[]`) opens
   * it to every authenticated caller, grants or not (whoami).
   */
  families?: Family[];
  /** Also takes a text/plain body (streamed by the CLI) up to MAX_ADMIN_TEXT_BODY instead of the JSON limit. */
  textBody?: true;
  run: (call: AdminCall) => unknown;
}

/** The message a caller without the admin family gets. */
export const NEEDS_ADMIN = 'this operation needs the admin family';

/** Throws unless the body holds only the named fields. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).find((name) => !allowed.includes(name));
  if (unknown !== undefined) throw invalidInput(`unknown field "${unknown}" (expected ${allowed.join(', ')})`);
}

/** A required non-empty string field. */
export function requiredString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') throw invalidInput(`"${name}" must be a non-empty string`);
  return value;
}

/** An optional string field. */
export function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidInput(`"${name}" must be a string`);
  return value;
}

/** A time given as an ISO 8601 string (query parameter or field), or undefined. */
export function optionalTime(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw invalidInput(`"${name}" must be an ISO 8601 time, e.g. 2027-01-01T00:00:00Z`);
  return date;
}

/** A non-negative integer (query parameter or field) up to `max`, or undefined. */
export function optionalInteger(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw invalidInput(`"${name}" must be an integer from 0 to ${max}`);
  }
  return n;
}

/** A query parameter, undefined when absent or empty. */
export function queryParam(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value === null || value === '' ? undefined : value;
}

/** A 404 for a path that names nothing. */
export function notFound(message: string): AdminError {
  return new AdminError('NotFound', message);
}

/** An answer streamed instead of rendered as JSON (the watch feed's Server-Sent Events). */
export class AdminStream {
  constructor(readonly contentType: string, readonly stream: Readable) {}
}
