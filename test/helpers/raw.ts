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
