/**
 * The CLI's request signer for remote mode: AWS SigV4 (header auth, service s3) with @smithy/signature-v4, the
 * signer the AWS SDK uses — an implementation independent of the gateway's own verifier, so each checks the other.
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** Access key pair to sign with. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What to sign: the body is given by its SHA-256 (hex), so a streamed body is signed without being held. */
export interface SignInput {
  method: string;
  url: URL;
  payloadHash: string;
  headers: Record<string, string>;
  credentials: Credentials;
  region: string;
  now?: Date;
}

/** The request headers with host, x-amz-date, x-amz-content-sha256 and Authorization added, as signed. */
export async function signRequest(input: SignInput): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials: input.credentials, region: input.region, service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of input.url.searchParams) {
    const prior = query[name];
    query[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
  }
  const request = new HttpRequest({
    method: input.method,
    protocol: input.url.protocol,
    hostname: input.url.hostname,
    port: input.url.port ? Number(input.url.port) : undefined,
    path: input.url.pathname,
    query,
    headers: { ...input.headers, host: input.url.host, 'x-amz-content-sha256': input.payloadHash },
  });
  const signed = await signer.sign(request, { signingDate: input.now });
  return signed.headers;
}
