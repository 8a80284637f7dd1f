/**
 * Shared setup of the "authority never grows" tests: a tenant with a bucket of probe objects, admins of several
 * breadths, a local OpenID Connect issuer (JWKS over loopback HTTP), STS calls, and the probe that asks the real
 * gateway over HTTP which (bucket, key, action) triples a caller may use.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ScopeGrant } from '../../policy/index.ts';
import { ok, type Creds } from './admin.ts';
import { ROOT, startTestGateway, type TestGateway } from './gateway.ts';
import { errorCode, send, signedSend, type RawResponse } from './raw.ts';

/** The tenant and bucket every authority test uses. */
export const TENANT = 'acme';
export const BUCKET = 'data';

/** Keys present in BUCKET at the start of each test. */
export const KEYS = ['backups/host1/a', 'backups/host2/a', 'pub/x', 'secret/x', 'reports/q1.csv', 'reports/q1.csv.draft'];

/** Every object family on one bucket and prefix, plus admin: what a prefix-scoped tenant admin holds. */
export function adminOf(prefix: string, extra: ScopeGrant['families'] = []): ScopeGrant[] {
  return [{ families: ['object:read', 'object:write', 'object:delete', 'object:list', 'admin', ...extra], bucket: BUCKET, prefix }];
}

/** Creates TENANT, BUCKET (owned by it) and the KEYS, as root. */
export async function seed(tg: TestGateway, tenant = TENANT, bucket = BUCKET): Promise<void> {
  await ok(tg, ROOT, 'POST', '/tenants', { name: tenant });
  await tg.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await ok(tg, ROOT, 'PUT', `/buckets/${bucket}/owner`, { tenant, reassign: true });
  for (const key of KEYS) await tg.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}` }));
}

/** Runs `fn` on a fresh gateway (settings `env`) seeded as seed() does, with BUCKET governed by relationships. */
export async function withGovernedGateway(fn: (tg: TestGateway) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const tg = await startTestGateway(env);
  try {
    await seed(tg);
    await ok(tg, ROOT, 'PUT', `/buckets/${BUCKET}/governance`, { governed: true });
    await fn(tg);
  } finally {
    await tg.close();
  }
}

/** A credential of a tenant made by `maker` (root by default) through the admin API. */
export async function credential(tg: TestGateway, scopes: ScopeGrant[], maker: Creds = ROOT, tenant = TENANT): Promise<Creds & { id: string }> {
  const c = await ok(tg, maker, 'POST', '/credentials', { tenant, name: `c${Math.random().toString(36).slice(2, 8)}`, scopes });
  return { id: c.accessKeyId, accessKeyId: c.accessKeyId, secretAccessKey: c.secretKey };
}

/** Whether the AWS SDK's GetObject of `key` in BUCKET succeeds for `creds` (false on AccessDenied; other errors throw). */
export async function sdkReads(tg: TestGateway, creds: Creds, key: string): Promise<boolean> {
  const s3 = tg.client(creds);
  try {
    await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'AccessDenied') return false;
    throw error;
  } finally {
    s3.destroy();
  }
}

/** An STS client of the gateway. */
export function stsClient(tg: TestGateway, creds?: Creds): STSClient {
  return new STSClient({ endpoint: tg.gw.url, region: tg.config.region, credentials: creds ?? { accessKeyId: 'x', secretAccessKey: 'y' } });
}

/** AssumeRole; the session's credentials. */
export async function assumeRole(tg: TestGateway, creds: Creds, roleArn: string, policy?: string): Promise<Creds> {
  const out = await stsClient(tg, creds).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'probe', ...(policy ? { Policy: policy } : {}) }));
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

/** A local OpenID Connect issuer: its JWKS served over loopback HTTP, and ID tokens it signs. */
export interface Issuer {
  issuer: string;
  jwksUrl: string;
  token(claims: { sub: string; aud?: string }): Promise<string>;
  close(): Promise<void>;
}

/** Starts an issuer on a loopback port. */
export async function startIssuer(audience = 'my-app'): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] });
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${base}/issuer`;
  return {
    issuer,
    jwksUrl: `${base}/jwks.json`,
    token: (claims) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(claims.aud ?? audience)
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey as CryptoKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** AssumeRoleWithWebIdentity; the session's credentials and its subject. */
export async function assumeWeb(tg: TestGateway, roleArn: string, token: string): Promise<Creds & { subject: string }> {
  const out = await stsClient(tg).send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'web', WebIdentityToken: token }));
  const c = out.Credentials!;
  const payload = JSON.parse(Buffer.from(c.SessionToken!.split('.')[1]!, 'base64url').toString('utf8'));
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken!, subject: payload.sub };
}

/** One probe: a key in a bucket and what to try on it. */
export interface Triple {
  bucket: string;
  key: string;
  action: 'read' | 'write' | 'delete' | 'list';
}

/** The fixed probe set: every action on every key of BUCKET. */
export const TRIPLES: Triple[] = KEYS.flatMap((key) => (['read', 'write', 'delete', 'list'] as const).map((action) => ({ bucket: BUCKET, key, action })));

/** How a probe reaches the gateway: SigV4 credentials (header-signed) or a capability. */
export type Caller = { creds: Creds } | { capability: string };

function requestFor(t: Triple): { method: string; path: string; query: Record<string, string>; body: string } {
  const path = `/${t.bucket}/${t.key.split('/').map(encodeURIComponent).join('/')}`;
  switch (t.action) {
    case 'read':
      return { method: 'GET', path, query: {}, body: '' };
    case 'write':
      return { method: 'PUT', path, query: {}, body: `body of ${t.key}` };
    case 'delete':
      return { method: 'DELETE', path, query: {}, body: '' };
    case 'list':
      return { method: 'GET', path: `/${t.bucket}`, query: { 'list-type': '2', prefix: t.key }, body: '' };
  }
}

/** Error codes that refuse the caller itself; any other answer (a 404, say) came after authorization. */
const REFUSALS = new Set(['AccessDenied', 'InvalidToken', 'ExpiredToken', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']);

/**
 * Whether the gateway lets the caller do the triple: any answer but a refusal of the caller counts as allowed (a 404
 * was authorized first). An allowed delete is undone by root, so every probe starts from the same objects.
 */
export async function allowed(tg: TestGateway, caller: Caller, t: Triple): Promise<boolean> {
  const r = requestFor(t);
  let res: RawResponse;
  if ('creds' in caller) {
    const headers: Record<string, string> = caller.creds.sessionToken ? { 'x-amz-security-token': caller.creds.sessionToken } : {};
    res = await signedSend({ url: tg.gw.url, method: r.method, path: r.path, query: r.query, headers, body: r.body, creds: caller.creds });
  } else {
    const qs = new URLSearchParams(r.query).toString();
    res = await send({ url: tg.gw.url, method: r.method, path: r.path + (qs ? `?${qs}` : ''), headers: { 'x-anvil-capability': caller.capability }, body: r.body });
  }
  const status = res.status;
  if (status === 403 || REFUSALS.has(errorCode(res) ?? '')) return false;
  if (status >= 500) throw new Error(`${r.method} ${r.path}: ${status} ${res.body}`);
  if (t.action === 'delete' && status < 300) await tg.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: t.key, Body: `body of ${t.key}` }));
  return true;
}

/** The set of triples (as `action bucket/key`) a caller may use. */
export async function authority(tg: TestGateway, caller: Caller, triples: Triple[] = TRIPLES): Promise<Set<string>> {
  const out = new Set<string>();
  for (const t of triples) if (await allowed(tg, caller, t)) out.add(`${t.action} ${t.bucket}/${t.key}`);
  return out;
}

/** The members of `a` not in `b`: empty when a ⊆ b. */
export function beyond(a: Set<string>, b: Set<string>): string[] {
  return [...a].filter((x) => !b.has(x));
}

/** Closes an S3 client made for one test. */
export function done(...clients: S3Client[]): void {
  for (const c of clients) c.destroy();
}
