/**
 * Where the gateway may fetch an OpenID Connect issuer's JWKS from. Fetching a URL a tenant admin names is a
 * server-side request on the admin's behalf, so by default only https to a public address is allowed: no plain
 * http, no loopback, link-local, private or unspecified addresses (by name or after DNS resolution), no user info.
 * The operator may allow the rest (ANVIL_OIDC_ALLOW_INSECURE_JWKS, for a local IdP or tests).
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { InvalidInputError } from '../errors.ts';

/** The operator's choice: `allowInsecure` permits http and non-public hosts. */
export interface JwksPolicy {
  allowInsecure: boolean;
}

/** Address ranges a JWKS fetch never reaches by default (IANA special-purpose registries, RFC 6890). */
const BLOCKED = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3]] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) BLOCKED.addSubnet(net, bits, 'ipv6');

/** Whether an IP address literal is one a default policy refuses (IPv4-mapped IPv6 judged as its IPv4 address). */
export function blockedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return BLOCKED.check(mapped[1]!, 'ipv4');
  const family = isIP(bare);
  if (family === 0) return false;
  return BLOCKED.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** Throws InvalidInputError unless the URL may be fetched under the policy (judging the host as written). */
export function checkJwksUrl(url: string, policy: JwksPolicy): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError('the JWKS location is not a URL');
  }
  if (u.username !== '' || u.password !== '') throw new InvalidInputError('a JWKS URL may not carry user info');
  if (policy.allowInsecure) {
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InvalidInputError('a JWKS URL must use https');
    return u;
  }
  if (u.protocol !== 'https:') throw new InvalidInputError('a JWKS URL must use https');
  const host = u.hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || blockedAddress(host)) {
    throw new InvalidInputError('a JWKS URL may not name a loopback, link-local or private address');
  }
  return u;
}

/** checkJwksUrl, then (by default) every address the host resolves to must be public: called before each fetch. */
export async function assertJwksFetchable(url: string, policy: JwksPolicy): Promise<void> {
  const u = checkJwksUrl(url, policy);
  if (policy.allowInsecure || isIP(u.hostname.replace(/^\[|\]$/g, '')) !== 0) return;
  const addresses = await lookup(u.hostname, { all: true });
  if (addresses.length === 0 || addresses.some((a) => blockedAddress(a.address))) {
    throw new InvalidInputError('the JWKS host resolves to a loopback, link-local or private address');
  }
}
