/**
 * A lean upstream client for the hot object calls (GetObject, HeadObject, PutObject, UploadPart): one SigV4 signature
 * (lean-signer.ts) and one node:http(s) request on the backend's keep-alive agents, with
 * the bodies streamed both ways. The SDK's middleware stack (endpoint rules, schema serde, retry bookkeeping, checksum
 * stream wrappers) cost the gateway several times MinIO's own CPU per small request; everything else still goes
 * through the SDK. Failures are thrown in the SDK's shape (`name` = S3 error code, `$metadata.httpStatusCode`), so
 * errors.ts translates both alike.
 */
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { XMLParser } from 'fast-xml-parser';
import { request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Location } from './layout.ts';
import { timedOut } from './errors.ts';
import { escapeUri as escape, LeanSigner } from './lean-signer.ts';

/** SHA-256 of the empty payload: what a bodiless request signs. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Largest error document read from an upstream answer. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Statuses a replayable request is sent again for (the SDK's standard retry strategy retries the same). */
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** Error names of an answer without a body (HEAD, 304), as the SDK names them. */
const STATUS_NAMES: Record<number, string> = { 304: 'NotModified', 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' };

/** What the fail-fast and observing step of UpstreamHealth offers (see health.ts). */
export interface Reachability {
  assertUp(): void;
  observe(err: unknown): void;
}

/** A streamed request body: exactly `size` bytes, and optionally a checksum sent as an aws-chunked trailer. */
export interface LeanBody {
  stream: Readable;
  size: number;
  /** Trailer header name (`x-amz-checksum-crc32`) and its value, read once the stream has ended. */
  trailer?: { name: string; value: () => string | undefined };
}

/** One request of the lean client. */
export interface LeanRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  loc: Location;
  query?: Record<string, string>;
  headers?: Record<string, string | undefined>;
  body?: LeanBody;
  signal?: AbortSignal;
}

/** A 2xx answer; `body` must be read or destroyed. */
export interface LeanResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** Options of LeanClient. */
export interface LeanClientOptions {
  /** The upstream endpoint URL; AWS S3's regional endpoint when undefined. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  credentials: AwsCredentialIdentityProvider;
  agents: { http: Agent; https: Agent };
  timeoutMs: number;
}

/** A bucket name usable as a host name label (S3's virtual-hosted style) on this endpoint, as the SDK decides it. */
function virtualHostable(bucket: string, endpoint: URL): boolean {
  if (isIP(endpoint.hostname.replace(/^\[|\]$/g, '')) !== 0) return false;
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !/\.\./.test(bucket) && !(endpoint.protocol === 'https:' && bucket.includes('.'));
}

/** Characters a key keeps as they are on the wire (unreserved, and the `/` between segments). */
const PLAIN_KEY = /^[A-Za-z0-9\-._~/]*$/;

/** A key as it goes into the path: each segment escaped as SigV4 canonicalises it, the slashes kept. */
function keyPath(key: string): string {
  return PLAIN_KEY.test(key) ? key : key.split('/').map(escape).join('/');
}

/** The SDK's error shape, so translate(), faultCode() and faultStatus() read it as they read an SDK exception. */
function fault(status: number, code: string | undefined, message: string | undefined): Error {
  const name = code || STATUS_NAMES[status] || 'UnknownError';
  return Object.assign(new Error(message || name), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

const xml = new XMLParser({ parseTagValue: false });

/** Reads an error answer's document (bounded) into a fault. */
async function errorOf(res: IncomingMessage, method: string): Promise<Error> {
  const status = res.statusCode ?? 0;
  if (method === 'HEAD' || status === 304) {
    res.resume();
    return fault(status, undefined, undefined);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > ERROR_BODY_LIMIT) break;
      chunks.push(chunk as Buffer);
    }
  } catch {
    // An answer cut short still has its status.
  }
  let doc: { Error?: { Code?: string; Message?: string } } = {};
  try {
    doc = xml.parse(Buffer.concat(chunks).toString('utf8')) as typeof doc;
  } catch {
    // Not XML: the status decides.
  }
  return fault(status, doc.Error?.Code, doc.Error?.Message);
}

/**
 * aws-chunked framing with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER, as the SDK sends it): the value
 * is the one the gateway already verified, so no byte of the body is hashed a second time in JavaScript.
 */
class AwsChunked extends Transform {
  constructor(private readonly trailer: NonNullable<LeanBody['trailer']>) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length === 0) return done();
    this.push(`${chunk.length.toString(16)}\r\n`);
    this.push(chunk);
    done(null, '\r\n');
  }
  override _flush(done: TransformCallback): void {
    const value = this.trailer.value();
    this.push(value === undefined ? '0\r\n\r\n' : `0\r\n${this.trailer.name}:${value}\r\n\r\n`);
    done();
  }
}

/** Sends signed requests; see the module comment. */
export class LeanClient {
  private readonly signer: LeanSigner;
  private readonly url: URL;
  private readonly tls: boolean;
  private reachability: Reachability | undefined;

  constructor(private readonly options: LeanClientOptions) {
    this.url = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
    this.tls = this.url.protocol === 'https:';
    this.signer = new LeanSigner(options.region, options.credentials);
  }

  /** Closes the idle keep-alive sockets. */
  close(): void {
    this.options.agents.http.destroy();
    this.options.agents.https.destroy();
  }

  /** Fails fast while the upstream is down and reports every outcome, as the SDK clients do (health.ts). */
  watch(reachability: Reachability): void {
    this.reachability = reachability;
  }

  /**
   * Sends the request and resolves with a 2xx answer; throws an SDK-shaped fault for any other status and Node's
   * or a TimeoutError for network trouble. Bodiless requests are sent once more after a network error or a
   * retryable status; a streamed body is never replayed.
   */
  async send(req: LeanRequest): Promise<LeanResponse> {
    this.reachability?.assertUp();
    try {
      let res: LeanResponse;
      try {
        res = await this.attempt(req);
      } catch (err) {
        if (req.body || req.signal?.aborted || !retryable(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 100));
        res = await this.attempt(req);
      }
      this.reachability?.observe(undefined);
      return res;
    } catch (err) {
      this.reachability?.observe(err);
      throw err;
    }
  }

  /**
   * Where a bucket's requests go: virtual-hosted (the bucket as a host name label) or path-style, decided once per
   * bucket name (the rules are the SDK's, virtualHostable()).
   */
  private readonly hosts = new Map<string, { hostname: string; host: string; virtual: boolean }>();

  private hostOf(bucket: string): { hostname: string; host: string; virtual: boolean } {
    let h = this.hosts.get(bucket);
    if (!h) {
      const virtual = !this.options.forcePathStyle && virtualHostable(bucket, this.url);
      const hostname = virtual ? `${bucket}.${this.url.hostname}` : this.url.hostname;
      h = { hostname, host: this.url.port ? `${hostname}:${this.url.port}` : hostname, virtual };
      if (this.hosts.size >= 1000) this.hosts.clear();
      this.hosts.set(bucket, h);
    }
    return h;
  }

  /** One attempt; not async while the credentials are at hand, so a request costs no extra promise for them. */
  private attempt(req: LeanRequest): Promise<LeanResponse> {
    const { loc, body } = req;
    const { host, virtual } = this.hostOf(loc.Bucket);
    const key = keyPath(loc.Key);
    const path = virtual ? `/${key}` : `/${loc.Bucket}/${key}`;
    const headers: Record<string, string> = { host };
    const extra = req.headers;
    if (extra) for (const k in extra) if (extra[k] !== undefined) headers[k.toLowerCase()] = extra[k];
    if (!body) headers['x-amz-content-sha256'] = EMPTY_SHA256;
    else if (body.trailer) {
      Object.assign(headers, {
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'content-encoding': headers['content-encoding'] ? `${headers['content-encoding']},aws-chunked` : 'aws-chunked',
        'x-amz-decoded-content-length': String(body.size),
        'x-amz-trailer': body.trailer.name,
      });
    } else {
      headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      headers['content-length'] = String(body.size);
    }
    const query = req.query ?? {};
    const signable = { method: req.method, path, query, headers };
    const credentials = this.signer.current();
    if (credentials) {
      this.signer.signWith(credentials, signable);
      return this.dispatch(req, path, query, headers);
    }
    return this.signer.credentialsNow().then((c) => {
      this.signer.signWith(c, signable);
      return this.dispatch(req, path, query, headers);
    });
  }

  /** Sends the signed request and resolves with its 2xx answer (see send()). */
  private dispatch(req: LeanRequest, path: string, query: Record<string, string>, headers: Record<string, string>): Promise<LeanResponse> {
    const { body } = req;
    let search = '';
    for (const k in query) search += `${search ? '&' : ''}${escape(k)}=${escape(query[k]!)}`;
    const timeoutMs = this.options.timeoutMs;
    // Name, value, name, value: node:http then writes the head as given (each header still validated) instead of
    // copying every header through setHeader() into a map of its own first.
    const flat: string[] = [];
    for (const k in headers) flat.push(k, headers[k]!);
    return new Promise<LeanResponse>((resolve, reject) => {
      const r = (this.tls ? httpsRequest : httpRequest)({
        agent: this.tls ? this.options.agents.https : this.options.agents.http,
        hostname: this.url.hostname,
        port: this.url.port || undefined,
        method: req.method,
        path: search ? `${path}?${search}` : path,
        headers: flat,
        setHost: false,
      });
      const timeout = (what: string) => () => r.destroy(Object.assign(new Error(`upstream ${what} timed out after ${timeoutMs} ms`), { name: 'TimeoutError' }));
      // Idle time on the socket (connect included): an upstream that accepted and went silent. Set per request, so a
      // reused socket's time idle in the pool never counts (a held body may write nothing for a while). Streamed
      // bodies get no whole-request timer, bodiless requests one until the answer's head.
      r.setTimeout(timeoutMs, timeout('socket'));
      const headTimer = body ? undefined : setTimeout(timeout('request'), timeoutMs);
      const onAbort = () => r.destroy(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        if (headTimer) clearTimeout(headTimer);
        req.signal?.removeEventListener('abort', onAbort);
      };
      r.on('error', (err) => {
        done();
        reject(err);
      });
      r.on('response', (res) => {
        done();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // Idle time while the body streams; the answer's consumer sees the error.
          res.on('error', () => {});
          resolve({ status, headers: res.headers, body: res });
          return;
        }
        errorOf(res, req.method).then((err) => {
          // Refused before the body went out whole (a 507 after 100 Continue): the connection cannot be reused.
          if (body && !r.writableFinished) r.destroy();
          reject(err);
        }, reject);
      });
      if (!body) r.end();
      else if (body.trailer) body.stream.pipe(new AwsChunked(body.trailer)).pipe(r);
      else body.stream.pipe(r);
    });
  }
}

/** A failure worth one more attempt of a replayable request: no answer at all, or a transient status. */
function retryable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  // A timeout is not asked again: a silent upstream would only keep the client waiting one more timeout.
  if (status === undefined) return (err as Error)?.name !== 'AbortError' && !timedOut(err);
  return RETRYABLE_STATUS.has(status) || (err as Error).name === 'SlowDown';
}
