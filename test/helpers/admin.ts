/** Admin API calls and denial-log reads for end-to-end tests. */
import { ADMIN_PREFIX } from '../../gateway/admin/index.ts';
import { queryAudit, queryDenials, type DenialRecord } from '../../policy/index.ts';
import type { TestGateway } from './gateway.ts';
import { signedSend } from './raw.ts';

/** Credentials that sign admin requests. */
export type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** A signed JSON call to the admin API; the status and the parsed answer. */
export async function admin(tg: TestGateway, creds: Creds, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const q = path.indexOf('?');
  const query = q < 0 ? undefined : Object.fromEntries(new URLSearchParams(path.slice(q + 1)));
  const bare = q < 0 ? path : path.slice(0, q);
  const res = await signedSend({ url: tg.gw.url, method, path: ADMIN_PREFIX + bare, query, headers: text ? { 'content-type': 'application/json' } : {}, body: text, creds });
  return { status: res.status, json: res.body ? JSON.parse(res.body) : undefined };
}

/** An admin call that must succeed; its answer. */
export async function ok(tg: TestGateway, creds: Creds, method: string, path: string, body?: unknown): Promise<any> {
  const res = await admin(tg, creds, method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** Every denial line written so far (the gateway's batch written first). */
export async function denials(tg: { gw: TestGateway['gw'] }): Promise<Array<DenialRecord & Record<string, string>>> {
  await tg.gw.denials.flush();
  return (await queryDenials(tg.gw.database)) as Array<DenialRecord & Record<string, string>>;
}

/** Every denial and audit row as text, for asserting that no secret reaches them. */
export async function logText(tg: { gw: TestGateway['gw'] }): Promise<string> {
  await tg.gw.denials.flush();
  return JSON.stringify([await queryDenials(tg.gw.database), await queryAudit(tg.gw.database)]);
}
