/**
 * The requests the load generator replays, built ahead of time for one server: presigned URLs (query auth,
 * UNSIGNED-PAYLOAD), and header-signed requests exactly as @aws-sdk/client-s3 with default settings sends them
 * (captured at its HTTP handler: signed payload hash, flexible checksums, user agent and all). A signature stays
 * valid for 15 minutes, far longer than one workload runs.
 */
import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import type { BenchServer } from './servers.ts';

// The SDK warns about Node 20 at every client it creates; the project supports Node 20 on purpose.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** How a request is authenticated: presigned URL, or the SDK's header auth with a signed payload. */
export type AuthStyle = 'presigned' | 'sdk';

/** One object operation to build requests for. */
export interface ObjectRequest {
  method: 'GET' | 'PUT';
  bucket: string;
  key: string;
  /** PUT body. */
  body?: Buffer;
}

/** An SDK client for a bench server (path-style, us-east-1, default checksum and signing behaviour). */
export function sdkClient(server: BenchServer, requestHandler?: S3ClientConfig['requestHandler']): S3Client {
  return new S3Client({ endpoint: server.url, region: 'us-east-1', credentials: server.creds, forcePathStyle: true, maxAttempts: 1, requestHandler });
}

/** A presigned URL valid for an hour, without checksum parameters: a link as a browser or curl would use it. */
export async function presignedUrl(server: BenchServer, req: Omit<ObjectRequest, 'body'>): Promise<string> {
  const client = new S3Client({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: server.creds,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const command = req.method === 'GET'
    ? new GetObjectCommand({ Bucket: req.bucket, Key: req.key })
    : new PutObjectCommand({ Bucket: req.bucket, Key: req.key });
  try {
    return await getSignedUrl(client, command, { expiresIn: 3600 });
  } finally {
    client.destroy();
  }
}

/** A presigned request as raw HTTP/1.1 bytes. */
export async function presignedRequest(server: BenchServer, req: ObjectRequest): Promise<Buffer> {
  const url = new URL(await presignedUrl(server, req));
  const head = [`${req.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  if (req.method === 'PUT') head.push(`Content-Length: ${req.body?.length ?? 0}`);
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), req.method === 'PUT' ? (req.body ?? Buffer.alloc(0)) : Buffer.alloc(0)]);
}

/** The fields of the SDK's HttpRequest that go on the wire. */
interface HttpRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | null | undefined>;
  headers: Record<string, string>;
  body?: unknown;
}

/** RFC 3986 escaping as the SDK's query builder does it. */
const escape = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The query string of a captured SDK request. */
function queryString(query: HttpRequest['query']): string {
  const parts: string[] = [];
  for (const name of Object.keys(query).sort()) {
    const value = query[name];
    if (value === null || value === undefined) parts.push(escape(name));
    else for (const v of Array.isArray(value) ? value : [value]) parts.push(`${escape(name)}=${escape(v)}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

/** Serializes a captured SDK request to the bytes the SDK would write on the wire. */
function wireBytes(request: HttpRequest): Buffer {
  const head = [`${request.method} ${request.path}${queryString(request.query)} HTTP/1.1`];
  for (const [name, value] of Object.entries(request.headers)) head.push(`${name}: ${value}`);
  const body = request.body === undefined || request.body === null ? Buffer.alloc(0) : Buffer.from(request.body as Uint8Array | string);
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}

/**
 * Header-signed requests as the SDK builds them: the client runs its whole middleware stack (checksums, signing)
 * and hands the request to a handler that records it and answers with an empty 200 instead of sending it.
 */
export async function sdkRequests(server: BenchServer, reqs: ObjectRequest[]): Promise<Buffer[]> {
  const captured: HttpRequest[] = [];
  const handler = {
    async handle(request: HttpRequest) {
      captured.push(request);
      return { response: { statusCode: 200, headers: { etag: '"0"' }, body: Readable.from([]) } };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  };
  const client = sdkClient(server, handler);
  try {
    for (const r of reqs) {
      if (r.method === 'GET') await client.send(new GetObjectCommand({ Bucket: r.bucket, Key: r.key }));
      else await client.send(new PutObjectCommand({ Bucket: r.bucket, Key: r.key, Body: r.body }));
    }
  } finally {
    client.destroy();
  }
  return captured.map(wireBytes);
}

/** Requests in either style. */
export function buildRequests(style: AuthStyle, server: BenchServer, reqs: ObjectRequest[]): Promise<Buffer[]> {
  return style === 'sdk' ? sdkRequests(server, reqs) : Promise.all(reqs.map((r) => presignedRequest(server, r)));
}
