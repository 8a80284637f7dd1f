/**
 * How the CLI reaches the admin API: locally, by running the same dispatcher in-process as the operator on the policy
 * store (a data directory's SQLite files, or the PostgreSQL database ANVIL_POLICY_DATABASE names), or remotely, as
 * SigV4-signed HTTP requests. Commands see only AdminTransport.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { hostname } from 'node:os';
import {
  AccessRecords,
  FAMILIES,
  FOLLOW_OVERLAP_MS,
  followAudit,
  followDenials,
  isPostgresUrl,
  PolicyDatabase,
  PolicyStore,
  ROOT_TENANT,
  relationships,
  type AuditFilter,
  type DenialFilter,
  type Principal,
} from '../../policy/index.ts';
import { ADMIN_PREFIX, dispatchAdmin, toAdminError } from '../admin/index.ts';
import { AdminStream } from '../admin/call.ts';
import { closeTokenStores, openTokenStores } from '../sts/stores.ts';
import { signRequest, type Credentials } from './sign.ts';

/** Query parameters; undefined ones are left out. */
export type Query = Record<string, string | undefined>;

/** An admin API refusal or failure, as the API worded it. */
export class AdminRequestError extends Error {
  override name = 'AdminRequestError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Which log to follow, and the filter (time window and limit ignored). */
export type FollowRequest =
  | { kind: 'denials'; filter: DenialFilter }
  | { kind: 'audit'; filter: AuditFilter };

/** One way of sending admin requests. */
export interface AdminTransport {
  /** The gateway URL a remote transport talks to (from --endpoint, the profile or ANVIL_ENDPOINT); absent locally. */
  readonly endpoint?: string;
  /** Sends one request; resolves with the JSON answer or rejects with AdminRequestError. */
  call(method: string, path: string, options?: { query?: Query; body?: Record<string, unknown> }): Promise<any>;
  /** Sends a file as a text/plain body (streamed in remote mode, never capped by the JSON body limit). */
  upload(method: string, path: string, query: Query, file: string): Promise<any>;
  /** Calls onRecord for each new matching log line until the signal aborts. */
  follow(request: FollowRequest, onRecord: (record: any) => void, signal: AbortSignal): Promise<void>;
  /** Reads a Server-Sent Events endpoint (the watch feed), calling onEvent per event, until the signal aborts. */
  events(path: string, query: Query, onEvent: (event: ServerEvent) => void, signal: AbortSignal): Promise<void>;
  close(): void | Promise<void>;
}

/** One Server-Sent Event. */
export interface ServerEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Parses a Server-Sent Events stream into events until it ends or the signal aborts (which destroys it). */
export async function readEvents(stream: Readable, onEvent: (event: ServerEvent) => void, signal: AbortSignal): Promise<void> {
  const stop = (): void => {
    stream.destroy();
  };
  if (signal.aborted) return stop();
  signal.addEventListener('abort', stop, { once: true });
  let pending = '';
  try {
    for await (const chunk of stream) {
      pending += chunk.toString();
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const event: ServerEvent = { data: '' };
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon <= 0) continue;
          const field = line.slice(0, colon);
          const value = line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') event.data += (event.data ? '\n' : '') + value;
          else if (field === 'id' || field === 'event') event[field] = value;
        }
        if (event.data !== '') onEvent(event);
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function searchParams(query: Query = {}): URLSearchParams {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, value);
  return params;
}

/** The operator on the machine: root's powers, recorded in the audit log as `operator`. */
const OPERATOR: Principal = {
  tenant: ROOT_TENANT,
  accessKeyId: 'operator',
  subject: 'operator',
  isRoot: true,
  scopes: [{ families: [...FAMILIES], bucket: '*' }],
};

/** What local mode opens: the policy database and the stores over it. */
interface LocalStores {
  database: PolicyDatabase;
  policy: PolicyStore;
  engine: relationships.Relationships;
  records: AccessRecords;
}

async function openLocal(options: { dataDir: string; masterKey?: string; policyDatabase?: string }): Promise<LocalStores> {
  const database = await PolicyDatabase.open({ url: options.policyDatabase, dataDir: options.dataDir, node: `anvil-cli@${hostname()}:${process.pid}` });
  try {
    const policy = await PolicyStore.open({ database, dataDir: options.dataDir, masterKey: options.masterKey });
    openTokenStores({ policy });
    return { database, policy, engine: relationships.Relationships.open({ database, gcIntervalMs: 0 }), records: new AccessRecords(database) };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * Runs admin requests in this process as the operator, on the policy store of a data directory (SQLite) or of the
 * PostgreSQL database `policyDatabase` names; `create` allows a fresh one (bootstrap). Opened on the first request.
 */
export function localTransport(options: { dataDir: string; masterKey?: string; policyDatabase?: string; create: boolean }): AdminTransport {
  const { dataDir } = options;
  if (!options.create && !isPostgresUrl(options.policyDatabase) && !existsSync(join(dataDir, 'policy.db'))) {
    throw new AdminRequestError(404, 'NotFound', `no policy store in ${dataDir} (start the gateway there or run anvil bootstrap first)`);
  }
  let opened: Promise<LocalStores> | undefined;
  const open = () => (opened ??= openLocal(options));
  const dispatch = async (method: string, path: string, query: Query | undefined, body: Record<string, unknown>, text?: string) => {
    const { policy, engine, records } = await open();
    try {
      // Commands percent-encode path segments for HTTP, where addressing decodes the path once; so does this.
      const answer = await dispatchAdmin(
        { method, path: decodeURIComponent(path), query: searchParams(query), body, text },
        { principal: OPERATOR, policy, dataDir, relationships: engine, records, deny: () => {} },
      );
      return answer.body;
    } catch (err) {
      const known = toAdminError(err);
      if (!known) throw err;
      throw new AdminRequestError(known.status, known.code, known.message);
    }
  };
  return {
    call: (method, path, { query, body = {} } = {}) => dispatch(method, path, query, body),
    async upload(method, path, query, file) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new AdminRequestError(400, 'InvalidInput', `cannot read ${file}: ${(error as Error).message}`);
      }
      return dispatch(method, path, query, {}, text);
    },
    async events(path, query, onEvent, signal) {
      const answer = await dispatch('GET', path, query, {});
      if (!(answer instanceof AdminStream)) throw new AdminRequestError(500, 'InternalError', `${path} is not an event stream`);
      await readEvents(answer.stream, onEvent, signal);
    },
    async follow(req, onRecord, signal) {
      const { database } = await open();
      return req.kind === 'denials'
        ? followDenials(database, req.filter, onRecord, signal)
        : followAudit(database, req.filter, onRecord, signal);
    },
    async close() {
      // A store that never opened (database down or missing, wrong master key) has nothing to close, and its error
      // was already reported by the command that tried: awaiting it here again would throw it past main().
      const stores = await opened?.catch(() => undefined);
      if (stores === undefined) return;
      const { database, policy, engine, records } = stores;
      closeTokenStores(policy);
      await records.close();
      engine.close();
      await database.close();
    },
  };
}

/** A connection failure worded for a person: what could not be reached, and what to check. */
export function unreachable(endpoint: URL, error: NodeJS.ErrnoException): AdminRequestError {
  const where = `the gateway at ${endpoint.origin}`;
  const why: Record<string, string> = {
    ECONNREFUSED: `cannot reach ${where}: nothing is listening there (is the gateway running, and is --endpoint right?)`,
    ENOTFOUND: `cannot reach ${where}: the host name does not resolve`,
    EAI_AGAIN: `cannot reach ${where}: the host name does not resolve`,
    ETIMEDOUT: `cannot reach ${where}: the connection timed out`,
    ECONNRESET: `${where} closed the connection`,
    EHOSTUNREACH: `cannot reach ${where}: no route to the host`,
    DEPTH_ZERO_SELF_SIGNED_CERT: `${where} presents a self-signed certificate (set NODE_EXTRA_CA_CERTS to its CA file)`,
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: `${where} presents a certificate no known CA signed (set NODE_EXTRA_CA_CERTS to its CA file)`,
    SELF_SIGNED_CERT_IN_CHAIN: `${where} presents a certificate of an unknown CA (set NODE_EXTRA_CA_CERTS to its CA file)`,
    ERR_TLS_CERT_ALTNAME_INVALID: `${where} presents a certificate for another name`,
    EPROTO: `cannot speak TLS with ${where} (is it plain http://?)`,
  };
  return new AdminRequestError(0, 'ConnectionFailed', why[error.code ?? ''] ?? `cannot reach ${where}: ${error.message}`);
}

/** A request body: JSON text, or a file streamed from disk (its SHA-256 computed first, so the payload is signed). */
type OutgoingBody = { text: string } | { file: string; contentType: string };

async function fileSha256(path: string): Promise<{ hash: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash: hash.digest('hex'), size };
}

/** Signs requests to a gateway's admin API (SigV4 with @smithy/signature-v4, the payload always signed). */
export function remoteTransport(options: { endpoint: string; credentials: Credentials; region: string }): AdminTransport {
  const base = new URL(options.endpoint);
  const send = async (method: string, path: string, query: Query | undefined, body: OutgoingBody | undefined, stream = false): Promise<any> => {
    const url = new URL(base.pathname.replace(/\/$/, '') + ADMIN_PREFIX + path, base);
    url.search = searchParams(query).toString().replace(/\+/g, '%20');
    let payloadHash: string;
    let length: number;
    let contentType = 'application/json';
    if (body !== undefined && 'file' in body) {
      const { hash, size } = await fileSha256(body.file);
      [payloadHash, length, contentType] = [hash, size, body.contentType];
    } else {
      const text = body?.text ?? '';
      [payloadHash, length] = [createHash('sha256').update(text).digest('hex'), Buffer.byteLength(text)];
    }
    const headers = await signRequest({
      method,
      url,
      payloadHash,
      headers: { 'content-type': contentType, 'content-length': String(length) },
      credentials: options.credentials,
      region: options.region,
    });
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers }, (res) => {
        if (stream && res.statusCode === 200) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try {
            json = JSON.parse(raw);
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300 && json !== undefined) return resolve(json);
          const error = json?.error ?? { code: /<Code>([^<]*)<\/Code>/.exec(raw)?.[1] ?? `HTTP${status}`, message: /<Message>([^<]*)<\/Message>/.exec(raw)?.[1] ?? `HTTP ${status}` };
          reject(new AdminRequestError(status, String(error.code), String(error.message)));
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => reject(unreachable(url, error)));
      if (body !== undefined && 'file' in body) {
        const file = createReadStream(body.file);
        file.on('error', (error) => req.destroy(error));
        file.pipe(req);
      } else req.end(body?.text ?? '');
    });
  };
  const jsonBody = (body: Record<string, unknown> | undefined) => (body === undefined ? undefined : { text: JSON.stringify(body) });
  return {
    endpoint: options.endpoint,
    call: (method, path, { query, body } = {}) => send(method, path, query, jsonBody(body ?? (method === 'GET' ? undefined : {}))),
    upload: (method, path, query, file) => send(method, path, query, { file, contentType: 'text/plain; charset=utf-8' }),
    async events(path, query, onEvent, signal) {
      const res = (await send('GET', path, query, undefined, true)) as Readable;
      await readEvents(res, onEvent, signal);
    },
    async follow(req, onRecord, signal) {
      // The API answers queries, not streams: poll a window reaching back FOLLOW_OVERLAP_MS before the newest line
      // seen (lines of other nodes arrive a little late and out of order) and skip the lines already printed.
      const { filter } = req;
      let newest = Date.now();
      let seen = new Map<string, number>();
      let first = true;
      while (!signal.aborted) {
        if (!first) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
          });
        }
        if (signal.aborted) break;
        const from = newest - FOLLOW_OVERLAP_MS;
        const query: Query = { ...stringFilter(filter), since: new Date(from).toISOString() };
        const answer = await send('GET', `/${req.kind}`, query, undefined);
        for (const record of (answer[req.kind] ?? []) as Array<{ time: string }>) {
          const id = JSON.stringify(record);
          if (seen.has(id)) continue;
          const time = Date.parse(record.time);
          seen.set(id, time);
          newest = Math.max(newest, time);
          // What is there when the follow starts is not new.
          if (!first) onRecord(record);
        }
        first = false;
        seen = new Map([...seen].filter(([, time]) => time >= from));
      }
    },
    close: () => {},
  };
}

/** A log filter as admin API query parameters. */
export function stringFilter(filter: DenialFilter | AuditFilter): Query {
  const f = filter as DenialFilter & AuditFilter;
  return {
    tenant: f.tenant,
    accessKey: f.accessKeyId,
    layer: f.layer,
    bucket: f.bucket,
    keyPrefix: f.keyPrefix,
    actor: f.actor,
    action: f.action,
  };
}
