/**
 * SigV4 header signing of the lean client's requests (AWS: "Create a signed AWS API request",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html). Signing is part of what the gateway is
 * about, and the profile of a small upstream GET showed @smithy/signature-v4 at about 5% of its CPU: an extra HMAC per
 * request just to key its signing-key cache, a dozen awaits, byte conversions around every hash. The lean client
 * builds every request itself (path already escaped segment by segment, as S3 wants it: no double encoding; query
 * values plain strings), so signing it is one SHA-256 (one-shot, no Hash object) and one HMAC with the day's key,
 * synchronously. Which headers are signed follows @smithy/signature-v4 (its constants), and
 * test/upstream-lean-signer.test.ts checks the result against it.
 */
import { ALWAYS_UNSIGNABLE_HEADERS, PROXY_HEADER_PATTERN, SEC_HEADER_PATTERN } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { createHmac, hash } from 'node:crypto';

/** Text RFC 3986 leaves as it is (unreserved characters only): most keys and every query name the client sends. */
const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** RFC 3986 encoding as SigV4 canonicalises it (encodeURIComponent leaves `!'()*` alone). */
export function escapeUri(s: string): string {
  if (UNRESERVED.test(s)) return s;
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Headers signed or not by name, decided once per name (the @smithy/signature-v4 rules below). */
const signable = new Map<string, boolean>();

function isSignable(name: string): boolean {
  let yes = signable.get(name);
  if (yes === undefined) {
    yes = !Object.hasOwn(ALWAYS_UNSIGNABLE_HEADERS, name) && !PROXY_HEADER_PATTERN.test(name) && !SEC_HEADER_PATTERN.test(name);
    // Header names come from the gateway's own code, a bounded set; the bound is a second line of defence.
    if (signable.size < 1000) signable.set(name, yes);
  }
  return yes;
}

/** Refresh credentials this long before they expire, as the SDK's memoized providers do. */
const REFRESH_BEFORE_MS = 5 * 60_000;

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
  /** The provider's last identity, used without asking it again until it nears its expiration (if it has one). */
  private identity: AwsCredentialIdentity | undefined;
  /** x-amz-date of the last second signed in, and that second (ms since the epoch, floored). */
  private longDate = '';
  private second = -1;

  constructor(
    private readonly region: string,
    private readonly credentials: AwsCredentialIdentityProvider,
    private readonly service = 's3',
  ) {}

  /**
   * The credentials to sign with when they are at hand without asking the provider (static ones, or refreshing ones
   * still more than five minutes from expiry), else undefined: then await credentialsNow().
   */
  current(now = Date.now()): AwsCredentialIdentity | undefined {
    const c = this.identity;
    if (c === undefined) return undefined;
    return c.expiration === undefined || c.expiration.getTime() - now > REFRESH_BEFORE_MS ? c : undefined;
  }

  /** Asks the provider for credentials (and keeps them for current()). Throws what the provider throws. */
  async credentialsNow(): Promise<AwsCredentialIdentity> {
    this.identity = await this.credentials();
    return this.identity;
  }

  /**
   * Adds `x-amz-date`, `x-amz-security-token` (session credentials) and `authorization` to `req.headers` and returns
   * them. Throws what the credential provider throws.
   */
  async sign(req: SignableRequest, now = new Date()): Promise<Record<string, string>> {
    return this.signWith(this.current(now.getTime()) ?? (await this.credentialsNow()), req, now);
  }

  /** sign() with credentials in hand (from current() or credentialsNow()): synchronous. */
  signWith(credentials: AwsCredentialIdentity, req: SignableRequest, now = new Date()): Record<string, string> {
    const headers = req.headers;
    const longDate = this.amzDate(now);
    const day = longDate.slice(0, 8);
    headers['x-amz-date'] = longDate;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers).filter(isSignable).sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n]!)}\n`;
    const signedHeaders = names.join(';');
    const keys = Object.keys(req.query);
    const query = keys.length === 0
      ? ''
      : keys
          .map((k) => [escapeUri(k), escapeUri(req.query[k]!)] as const)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k}=${v}`)
          .join('&');
    const canonicalRequest = `${req.method}\n${req.path}\n${query}\n${canonicalHeaders}\n${signedHeaders}\n${headers['x-amz-content-sha256']}`;
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${hash('sha256', canonicalRequest, 'hex')}`;
    const signature = createHmac('sha256', this.signingKey(credentials, day)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** `20261130T101717Z` for `now`, formatted once per second. */
  private amzDate(now: Date): string {
    const second = Math.floor(now.getTime() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.longDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    }
    return this.longDate;
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
