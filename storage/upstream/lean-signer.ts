/**
 * SigV4 header signing of the lean client's requests (AWS: "Create a signed AWS API request",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html). Signing is part of what the gateway is
 * about, and the profile of a small upstream GET showed @smithy/signature-v4 at about 5% of its CPU: an extra HMAC per
 * request just to key its signing-key cache, a dozen awaits, byte conversions around every hash. The lean client
 * builds every request itself (path already escaped segment by segment, as S3 wants it: no double encoding; query
 * values plain strings), so signing it is one SHA-256 and one HMAC with the day's key, synchronously. Which headers
 * are signed follows @smithy/signature-v4 (its constants), and test/upstream-lean-signer.test.ts checks the result
 * against it.
 */
import { ALWAYS_UNSIGNABLE_HEADERS, PROXY_HEADER_PATTERN, SEC_HEADER_PATTERN } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { createHash, createHmac } from 'node:crypto';

/** RFC 3986 encoding as SigV4 canonicalises it (encodeURIComponent leaves `!'()*` alone). */
export function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Whitespace a canonical header value loses or has collapsed (SigV4: trimmed, sequential spaces as one). */
const UNCANONICAL = /[\r\n\t]| {2}|^ | $/;

/** A header value as SigV4 signs it; most values are already canonical, and are checked with one test. */
function canonicalValue(v: string): string {
  return UNCANONICAL.test(v) ? v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : v;
}

/** One request to sign: the path as it goes on the wire, the query unescaped, header names in lower case. */
export interface SignableRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Must hold `host` and `x-amz-content-sha256` (the payload hash that is signed). */
  headers: Record<string, string>;
}

/** Signs requests for one region and service with credentials from a provider (static or refreshing). */
export class LeanSigner {
  /** The day's signing key for the last credentials seen (a new day or new credentials derive a new one). */
  private cached: { day: string; credentials: AwsCredentialIdentity; key: Buffer } | undefined;

  constructor(
    private readonly region: string,
    private readonly credentials: AwsCredentialIdentityProvider,
    private readonly service = 's3',
  ) {}

  /**
   * Adds `x-amz-date`, `x-amz-security-token` (session credentials) and `authorization` to `req.headers` and returns
   * them. Throws what the credential provider throws.
   */
  async sign(req: SignableRequest, now = new Date()): Promise<Record<string, string>> {
    const credentials = await this.credentials();
    const headers = req.headers;
    const longDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = longDate.slice(0, 8);
    headers['x-amz-date'] = longDate;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers)
      .filter((n) => !Object.hasOwn(ALWAYS_UNSIGNABLE_HEADERS, n) && !PROXY_HEADER_PATTERN.test(n) && !SEC_HEADER_PATTERN.test(n))
      .sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n]!)}\n`;
    const signedHeaders = names.join(';');
    const query = Object.keys(req.query)
      .map((k) => [escapeUri(k), escapeUri(req.query[k]!)] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const canonicalRequest = `${req.method}\n${req.path}\n${query}\n${canonicalHeaders}\n${signedHeaders}\n${headers['x-amz-content-sha256']}`;
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', this.signingKey(credentials, day)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  private signingKey(credentials: AwsCredentialIdentity, day: string): Buffer {
    const c = this.cached;
    if (c && c.day === day && c.credentials.accessKeyId === credentials.accessKeyId && c.credentials.secretAccessKey === credentials.secretAccessKey) return c.key;
    let key = createHmac('sha256', `AWS4${credentials.secretAccessKey}`).update(day).digest();
    for (const part of [this.region, this.service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
    this.cached = { day, credentials, key };
    return key;
  }
}
