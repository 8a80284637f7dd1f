/**
 * The lean client's SigV4 signer (storage/upstream/lean-signer.ts) signs exactly as @smithy/signature-v4, the SDK's
 * own signer, configured as the lean client used it: same Authorization header for the same request and instant,
 * with query parameters, headers needing canonical whitespace, session credentials, and a new day. (MinIO checks
 * the real thing in test/upstream-lean.test.ts and every other upstream test.)
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import test from 'ava';
import { LeanSigner, type SignableRequest } from '../storage/upstream/lean-signer.ts';

const KEYS: AwsCredentialIdentity = { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const SESSION: AwsCredentialIdentity = { ...KEYS, sessionToken: 'FwoGZXIvYXdzEXAMPLE//token+/=' };

async function both(req: SignableRequest, credentials: AwsCredentialIdentity, when: Date): Promise<[Record<string, string>, Record<string, string>]> {
  const smithy = new SignatureV4({ service: 's3', region: 'eu-west-3', credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const expected = await smithy.sign(new HttpRequest({ method: req.method, protocol: 'http:', hostname: 'h', path: req.path, query: { ...req.query }, headers: { ...req.headers } }), { signingDate: when });
  const got = await new LeanSigner('eu-west-3', async () => credentials).sign({ ...req, headers: { ...req.headers } }, when);
  return [got, expected.headers];
}

const GET: SignableRequest = {
  method: 'GET',
  path: '/bucket/a%20key/with%21odd%2A%28chars%29/%E2%9C%93',
  query: {},
  headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', range: 'bytes=0-99', 'x-amz-checksum-mode': 'ENABLED' },
};

test('a bodiless GET with a range is signed as @smithy/signature-v4 signs it', async (t) => {
  const [got, expected] = await both(GET, KEYS, new Date('2026-11-30T10:17:17.123Z'));
  t.is(got.authorization, expected.authorization);
  t.is(got['x-amz-date'], '20261130T101717Z');
});

test('query parameters sort by key (a key that prefixes another first), values escaped', async (t) => {
  const req: SignableRequest = {
    ...GET,
    method: 'PUT',
    query: { uploadId: 'abc/def+ghi=', partNumber: '7', 'part-x': 'y z', part: '1' },
    headers: { ...GET.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': '5' },
  };
  const [got, expected] = await both(req, KEYS, new Date('2026-11-30T23:59:59Z'));
  t.is(got.authorization, expected.authorization);
});

test('header values get canonical whitespace; unsignable headers stay unsigned', async (t) => {
  const req: SignableRequest = {
    ...GET,
    method: 'PUT',
    headers: { ...GET.headers, 'x-amz-meta-note': '  two  spaces\tand a tab  ', 'user-agent': 'x', 'transfer-encoding': 'chunked', 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' },
  };
  const [got, expected] = await both(req, KEYS, new Date('2026-12-01T00:00:00Z'));
  t.is(got.authorization, expected.authorization);
  t.notRegex(got.authorization ?? '', /user-agent|transfer-encoding/);
});

test('session credentials add a signed x-amz-security-token; a new day derives a new key', async (t) => {
  const signer = new LeanSigner('eu-west-3', async () => SESSION);
  for (const when of [new Date('2026-11-30T12:00:00Z'), new Date('2026-12-01T12:00:00Z'), new Date('2026-11-30T12:00:00Z')]) {
    const [, expected] = await both(GET, SESSION, when);
    const got = await signer.sign({ ...GET, headers: { ...GET.headers } }, when);
    t.is(got['x-amz-security-token'], SESSION.sessionToken ?? '');
    t.is(got.authorization, expected.authorization);
  }
});
