/** Hand-built, SigV4-signed HTTP requests (via @smithy/signature-v4) for inputs real clients refuse to send. */
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { request } from 'node:http';
import { ROOT } from './gateway.ts';

function bytes(d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof d === 'string') return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** The Checksum constructor SignatureV4 wants, on node:crypto. */
class NodeSha256 {
  private h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
  reset(): void {}
}

/** A raw HTTP response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends one request exactly as given: path (already encoded), headers, body. */
export function send(opts: {
  url: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}): Promise<RawResponse> {
  const u = new URL(opts.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: opts.method, path: opts.path, headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** S3 signs the path decoded once and encoded once (RFC 3986 unreserved kept, '/' kept), never normalized. */
function s3CanonicalPath(path: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return path;
  }
  return encodeURIComponent(decoded)
    .replace(/%2F/g, '/')
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** What to sign. */
export interface SignOptions {
  url: string;
  method: string;
  /** Path as it goes on the wire, percent-encoded. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  creds?: { accessKeyId: string; secretAccessKey: string };
  /** Overrides x-amz-content-sha256 (default: SHA-256 of the body). */
  payloadHash?: string;
  signingDate?: Date;
}

/** Signs a request (header auth, signed payload hash unless given): the wire path with query, and the headers. */
export async function signRequest(opts: SignOptions): Promise<{ path: string; headers: Record<string, string> }> {
  const u = new URL(opts.url);
  const body = opts.body ?? '';
  const signer = new SignatureV4({
    credentials: opts.creds ?? ROOT,
    region: 'us-east-1',
    service: 's3',
    sha256: NodeSha256,
    // We hand the signer S3's canonical path ourselves; its own escaping would also normalize dot segments.
    uriEscapePath: false,
    applyChecksum: false,
  });
  const payloadHash = opts.payloadHash ?? createHash('sha256').update(body).digest('hex');
  const headers: Record<string, string> = {
    host: u.host,
    'x-amz-content-sha256': payloadHash,
    ...opts.headers,
  };
  const signed = await signer.sign(
    { method: opts.method, protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: s3CanonicalPath(opts.path), query: opts.query ?? {}, headers, body },
    { signingDate: opts.signingDate },
  );
  const qs = new URLSearchParams(opts.query ?? {}).toString().replace(/\+/g, '%20');
  return { path: opts.path + (qs ? `?${qs}` : ''), headers: signed.headers as Record<string, string> };
}

/** Signs and sends a request. */
export async function signedSend(opts: SignOptions): Promise<RawResponse> {
  const { path, headers } = await signRequest(opts);
  return send({ url: opts.url, method: opts.method, path, headers, body: opts.body ?? '' });
}

/** The <Code> of an S3 error document. */
export function errorCode(res: RawResponse): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(res.body)?.[1] ?? (res.headers['x-amz-error-code'] as string | undefined);
}

/**
 * Signs and sends a request byte for byte as given, for what no signer will produce: a query of raw components
 * (`prefix=%FF`, already in canonical form: unreserved characters and upper-case escapes) and header values of any
 * bytes (a Buffer goes on the wire as those bytes). The canonical request is built here from the bytes, as the
 * SigV4 reference defines it, independently of the gateway's own code. `path` must be canonical already.
 */
export function rawSignedSend(opts: {
  url: string;
  method: string;
  path: string;
  query?: Array<[string, string]>;
  headers?: Record<string, string | Buffer>;
  body?: Buffer | string;
  creds?: { accessKeyId: string; secretAccessKey: string };
}): Promise<RawResponse> {
  const u = new URL(opts.url);
  const creds = opts.creds ?? ROOT;
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : (opts.body ?? Buffer.alloc(0));
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers = new Map<string, Buffer>();
  for (const [n, v] of Object.entries(opts.headers ?? {})) headers.set(n.toLowerCase(), Buffer.isBuffer(v) ? v : Buffer.from(v));
  headers.set('host', Buffer.from(u.host));
  headers.set('x-amz-date', Buffer.from(amzDate));
  headers.set('x-amz-content-sha256', Buffer.from(createHash('sha256').update(body).digest('hex')));
  const names = [...headers.keys()].sort();
  const query = [...(opts.query ?? [])].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const rawQuery = query.map(([n, v]) => `${n}=${v}`).join('&');
  const canonical = Buffer.concat([
    Buffer.from(`${opts.method}\n${opts.path}\n${rawQuery}\n`),
    ...names.flatMap((n) => [Buffer.from(`${n}:`), headers.get(n)!, Buffer.from('\n')]),
    Buffer.from(`\n${names.join(';')}\n${headers.get('x-amz-content-sha256')!.toString()}`),
  ]);
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  let key: Buffer = Buffer.from(`AWS4${creds.secretAccessKey}`);
  for (const part of [day, 'us-east-1', 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const wire: Record<string, string> = {};
  // Node writes header values as latin1: one character per byte, so these bytes go out exactly.
  for (const n of names) wire[n] = headers.get(n)!.toString('latin1');
  wire.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return send({ url: opts.url, method: opts.method, path: opts.path + (rawQuery ? `?${rawQuery}` : ''), headers: wire, body });
}
