/**
 * CLI commands for temporary credentials and capabilities: roles, OpenID Connect providers, the session-token
 * signing key, capability minting, revocation and root-key reset, and `anvil share` (a plain URL that opens one
 * object with no other credentials).
 */
import type { OidcProviderInfo, RoleInfo } from '../../policy/index.ts';
import type { Command, CommandRun } from './command.ts';
import { formatScope, parseDuration, parseScope, say, shortTime, table, timeArg, UsageError } from './format.ts';

const JSON_OPT = { json: { type: 'boolean' } } as const;
const str = (run: CommandRun, name: string) => run.values[name] as string | undefined;
const strings = (run: CommandRun, name: string) => (run.values[name] as string[] | undefined) ?? [];
const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
const enc = encodeURIComponent;

/** A key as a URL path, each segment percent-encoded, the slashes kept. */
export function keyPath(key: string): string {
  return key.split('/').map(enc).join('/');
}

/** Splits `s3://bucket/key` into bucket and key. */
export function parseS3Url(text: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(text);
  if (!m) throw new UsageError(`"${text}" is not an s3://bucket/key URL`);
  return { bucket: m[1]!, key: m[2]! };
}

function roleTable(roles: RoleInfo[]): string {
  const rows = roles.map((r) => [r.arn, String(r.maxDurationSeconds), r.trust?.join(',') ?? '(tenant)', r.scopes.map(formatScope).join(' ')]);
  return table(['ROLE', 'MAX SECONDS', 'TRUST', 'SCOPES'], rows);
}

function providerTable(providers: OidcProviderInfo[]): string {
  const rows = providers.map((p) => [p.id, p.tenant, p.issuer, p.audience, p.algorithms.join(','), p.roles.join(','), shortTime(p.createdAt)]);
  return table(['ID', 'TENANT', 'ISSUER', 'AUDIENCE', 'ALGORITHMS', 'ROLES', 'CREATED'], rows);
}

function seconds(run: CommandRun, name: string): number | undefined {
  const text = str(run, name);
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${name} takes seconds or a duration (15m, 12h)`);
  return Math.floor(ms / 1000);
}

/** Mints a capability through the admin API. */
async function mint(run: CommandRun, body: Record<string, unknown>): Promise<{ id: string; capability: string; bucket: string; prefix: string; expiresAt?: string }> {
  return run.api.call('POST', '/capabilities', { body });
}

/** The commands this file adds, in the order help lists them. */
export const TOKEN_COMMANDS: Command[] = [
  {
    name: 'role create', args: ['NAME'],
    options: {
      tenant: { type: 'string' }, description: { type: 'string' }, scope: { type: 'string', multiple: true },
      'max-duration': { type: 'string' }, trust: { type: 'string', multiple: true }, replace: { type: 'boolean' }, ...JSON_OPT,
    },
    summary: "define a role: --scope 'object:read@bucket/prefix' (repeatable) [--max-duration 1h] [--trust app:AKIA…|user:*] [--tenant T]",
    async run(run) {
      const scopes = strings(run, 'scope').map(parseScope);
      if (scopes.length === 0) throw new UsageError('role create needs at least one --scope');
      const trust = strings(run, 'trust');
      const role = await run.api.call('POST', '/roles', {
        body: {
          tenant: str(run, 'tenant'), name: run.args[0], description: str(run, 'description'), scopes,
          maxDurationSeconds: seconds(run, 'max-duration'), trust: trust.length > 0 ? trust : undefined, replace: run.values.replace === true,
        },
      });
      run.out(run.values.json ? json(role) : say`Role ${role.arn} defined (sessions up to ${role.maxDurationSeconds}s).\n`);
    },
  },
  {
    name: 'role list', args: [], options: { tenant: { type: 'string' }, ...JSON_OPT }, summary: 'list roles',
    async run(run) {
      const { roles } = await run.api.call('GET', '/roles', { query: { tenant: str(run, 'tenant') } });
      run.out(run.values.json ? json(roles) : roleTable(roles));
    },
  },
  {
    name: 'role delete', args: ['TENANT', 'NAME'], options: {}, summary: 'delete a role (its sessions end on their next request)',
    async run(run) {
      await run.api.call('DELETE', `/roles/${enc(run.args[0]!)}/${enc(run.args[1]!)}`);
      run.out(say`Role ${run.args[1]} of tenant ${run.args[0]} deleted.\n`);
    },
  },
  {
    name: 'oidc add', args: [],
    options: {
      tenant: { type: 'string' }, issuer: { type: 'string' }, audience: { type: 'string' }, jwks: { type: 'string' },
      alg: { type: 'string' }, role: { type: 'string', multiple: true }, ...JSON_OPT,
    },
    summary: 'trust an OpenID Connect issuer: --issuer URL --audience AUD --jwks FILE|URL --role NAME (repeatable) [--alg RS256,ES256] [--tenant T]',
    async run(run) {
      for (const name of ['issuer', 'audience', 'jwks']) if (!str(run, name)) throw new UsageError(`oidc add needs --${name}`);
      if (strings(run, 'role').length === 0) throw new UsageError('oidc add needs at least one --role');
      const p = await run.api.call('POST', '/oidc-providers', {
        body: {
          tenant: str(run, 'tenant'), issuer: str(run, 'issuer'), audience: str(run, 'audience'), jwks: str(run, 'jwks'),
          algorithms: str(run, 'alg')?.split(',').map((a) => a.trim()).filter(Boolean), roles: strings(run, 'role'),
        },
      });
      run.out(run.values.json ? json(p) : say`OIDC provider ${p.id} added: ${p.issuer} may assume ${p.roles.join(', ')} in tenant ${p.tenant}.\n`);
    },
  },
  {
    name: 'oidc list', args: [], options: { tenant: { type: 'string' }, ...JSON_OPT }, summary: 'list OpenID Connect providers',
    async run(run) {
      const { providers } = await run.api.call('GET', '/oidc-providers', { query: { tenant: str(run, 'tenant') } });
      run.out(run.values.json ? json(providers) : providerTable(providers));
    },
  },
  {
    name: 'oidc delete', args: ['ID'], options: {}, summary: 'stop trusting an issuer (its sessions end on their next request)',
    async run(run) {
      await run.api.call('DELETE', `/oidc-providers/${enc(run.args[0]!)}`);
      run.out(say`OIDC provider ${run.args[0]} deleted.\n`);
    },
  },
  {
    name: 'sts rotate-key', args: [], options: { grace: { type: 'string' }, ...JSON_OPT },
    summary: 'sign session tokens with a new key; old keys verify for --grace SECONDS (default 12h; 0 ends their sessions now)',
    async run(run) {
      const grace = seconds(run, 'grace');
      const r = await run.api.call('POST', '/sts/keys/rotate', { body: grace === undefined ? {} : { graceSeconds: grace } });
      run.out(run.values.json ? json(r) : say`Session tokens are now signed with key ${r.kid}.\n`);
    },
  },
  {
    name: 'capability mint', args: [],
    options: { tenant: { type: 'string' }, bucket: { type: 'string' }, prefix: { type: 'string' }, actions: { type: 'string' }, expires: { type: 'string' }, ...JSON_OPT },
    summary: 'mint a capability: --bucket B [--prefix P] [--actions read,list,write,delete] [--expires 1h|ISO]',
    async run(run) {
      const bucket = str(run, 'bucket');
      if (!bucket) throw new UsageError('capability mint needs --bucket');
      const actions = (str(run, 'actions') ?? 'read').split(',').map((a) => a.trim()).filter(Boolean);
      const c = await mint(run, { tenant: str(run, 'tenant'), bucket, prefix: str(run, 'prefix'), actions, expiresAt: timeArg('expires', str(run, 'expires'), 1) });
      run.out(run.values.json ? json(c) : say`Capability ${c.id}:\n${c.capability}\n`);
    },
  },
  {
    name: 'capability revoke', args: ['ID'], options: JSON_OPT, summary: 'revoke a capability by id (refused from its next use on)',
    examples: ['capability revoke acme:Xyz…'],
    async run(run) {
      const r = await run.api.call('POST', `/capabilities/${enc(run.args[0]!)}/revoke`);
      run.out(run.values.json ? json(r) : say`Capability ${r.id} revoked.\n`);
    },
  },
  {
    name: 'capability reset', args: [], options: { tenant: { type: 'string' }, ...JSON_OPT },
    summary: "replace a tenant's capability root key: every capability and share link minted before stops working",
    async run(run) {
      const tenant = str(run, 'tenant');
      if (!tenant) throw new UsageError('capability reset needs --tenant');
      const r = await run.api.call('POST', '/capabilities/reset', { body: { tenant } });
      run.out(run.values.json ? json(r) : say`Capability root key of tenant ${tenant} reset; earlier capabilities no longer work.\n`);
    },
  },
  {
    name: 'share', args: ['S3URL'], options: { expires: { type: 'string' }, url: { type: 'string' }, ...JSON_OPT },
    summary: 'print a link that reads s3://bucket/key (GET, HEAD, ranges) with no other credentials: [--expires 1h] [--url GATEWAY]',
    examples: ['share s3://data/reports/q1.csv --expires 1h --endpoint https://s3.example.com'],
    async run(run) {
      const { bucket, key } = parseS3Url(run.args[0]!);
      if (key === '') throw new UsageError('share needs an object key: s3://bucket/key');
      // The link's gateway: --url, else the one this command talks to (--endpoint, the profile or ANVIL_ENDPOINT).
      const base = str(run, 'url') ?? run.api.endpoint;
      if (!base) throw new UsageError('share needs --url GATEWAY_URL (or --endpoint, a profile or ANVIL_ENDPOINT) to build the link');
      // A share link opens exactly this object, not every key that merely starts with its name.
      const c = await mint(run, { bucket, prefix: key, exact: true, actions: ['read'], expiresAt: timeArg('expires', str(run, 'expires') ?? '1h', 1) });
      const url = `${base.replace(/\/$/, '')}/${enc(bucket)}/${keyPath(key)}?X-Anvil-Capability=${c.capability}`;
      run.out(run.values.json ? json({ ...c, url }) : say`${url}\n`);
    },
  },
];
