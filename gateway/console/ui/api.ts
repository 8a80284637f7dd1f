/**
 * The console's one way to the gateway: JSON requests to the console API (paths relative to the page, so the console
 * works under any origin the gateway answers on), the session's CSRF token on every change, and a signed-out event
 * when the session is gone. Scope formatting and the tenant-wide rule come from policy/ itself (pure, bundled in).
 */
import { formatGrant as format, holdsTenantWide as tenantWide } from '../../../policy/scopes.ts';
import { FAMILIES, type DenialLayer, type Family, type ScopeGrant } from '../../../policy/types.ts';

export type { DenialLayer, Family };

/** A refusal or failure as the admin API words it. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly requestId?: string) {
    super(message);
  }
}

/** Who is signed in, as GET api/session answers. */
export interface Session {
  tenant: string;
  accessKeyId: string;
  subject: string;
  root: boolean;
  scopes: ScopeGrant[];
  csrf: string;
  expiresAt: string;
}

/** A scope grant. */
export type Grant = ScopeGrant;

/** Fired on window when a request finds the session gone. */
export const SIGNED_OUT = 'anvil:signed-out';

let csrf = '';

/** Remembers the session's CSRF token for later changes. */
export function useCsrf(token: string): void {
  csrf = token;
}

/** One request to `api/<path>`; resolves with the JSON answer or rejects with ApiError. */
export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-anvil-csrf'] = csrf;
  let res: Response;
  try {
    res = await fetch(`api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'ConnectionFailed', 'the gateway cannot be reached');
  }
  const answer = await res.json().catch(() => undefined);
  if (res.ok) return answer as T;
  if (res.status === 401 && path !== '/session') window.dispatchEvent(new Event(SIGNED_OUT));
  const error = answer?.error ?? {};
  throw new ApiError(res.status, error.code ?? `HTTP${res.status}`, error.message ?? `HTTP ${res.status}`, error.requestId);
}

/** An admin API call through the console (`/credentials`, `/denials?…`). */
export function admin<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  return api<T>(method, `/v1${path}`, body);
}

/** A query string of the defined values. */
export function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** A grant as the CLI spells it, every family written `*` (as wide as root's). */
export function formatGrant(g: Grant): string {
  return g.families.length === FAMILIES.length ? format({ ...g, families: ['*' as Family] }) : format(g);
}

/** Whether the session holds every family on every bucket (what schema writes need; the gateway decides anyway). */
export function holdsTenantWide(s: Session): boolean {
  return tenantWide({ tenant: s.tenant, accessKeyId: s.accessKeyId, subject: s.subject, isRoot: s.root, scopes: s.scopes });
}

/** A time for tables: local date and time to the second. */
export function shortTime(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
