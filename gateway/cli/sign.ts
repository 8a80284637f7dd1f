/**
 * A small client-side SigV4 signer (header auth, signed payload, service s3) for the CLI's remote mode, built on the
 * gateway's own canonicalization so client and server cannot drift apart.
 */
import { ALGORITHM, canonicalRequest, deriveSigningKey, formatAmzDate, sha256Hex, sign, stringToSign } from '../auth/sigv4.ts';

/** Access key pair to sign with. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What to sign. */
export interface SignInput {
  method: string;
  url: URL;
  body: string;
  headers: Record<string, string>;
  credentials: Credentials;
  region: string;
  now?: Date;
}

/** The request headers with x-amz-date, x-amz-content-sha256 and Authorization added (Host included, as signed). */
export function signRequest(input: SignInput): Record<string, string> {
  const amzDate = formatAmzDate(input.now ?? new Date());
  const date = amzDate.slice(0, 8);
  const payloadHash = sha256Hex(Buffer.from(input.body, 'utf8'));
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(input.headers).map(([name, value]) => [name.toLowerCase(), value])),
    host: input.url.host,
    'x-amz-date': amzDate,
    'x-amz-content-sha256': payloadHash,
  };
  const signedHeaders = Object.keys(headers).sort();
  const canonical = canonicalRequest({
    method: input.method,
    rawPath: input.url.pathname,
    rawQuery: input.url.search.slice(1),
    headers: Object.entries(headers),
    signedHeaders,
    payloadHash,
  });
  const scope = `${date}/${input.region}/s3/aws4_request`;
  const key = deriveSigningKey(input.credentials.secretAccessKey, { date, region: input.region, service: 's3' });
  const signature = sign(key, stringToSign(amzDate, scope, canonical));
  headers.authorization =
    `${ALGORITHM} Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return headers;
}
