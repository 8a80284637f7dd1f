/**
 * The CLI's command table: each command names its arguments and options (node:util parseArgs syntax), and turns
 * them into admin API calls through whichever transport main.ts picked. Output is a table by default, JSON on --json.
 */
import { FAMILIES, type AuditRecord, type CredentialInfo, type DenialLayer, type DenialRecord, type TenantInfo } from '../../policy/index.ts';
import { formatRow, formatScope, printable, say, keyValues, parseScope, shortTime, table, timeArg, UsageError } from './format.ts';
import { MIGRATE_COMMAND } from './migrate-command.ts';
import { AUDIT_COMMANDS } from './audit-commands.ts';
import { PROFILE_COMMANDS } from './profile-commands.ts';
import { RELATIONSHIP_COMMANDS } from './relationship-commands.ts';
import { TOKEN_COMMANDS } from './token-commands.ts';
import type { Command, CommandRun, Options } from './command.ts';
import type { FollowRequest, Query } from './transport.ts';

export type { Command, CommandRun } from './command.ts';

const JSON_OPT: Options = { json: { type: 'boolean' } };
const str = (run: CommandRun, name: string) => run.values[name] as string | undefined;
const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
const enc = encodeURIComponent;

/** `what` and `extra` are already printable (built with `say`). */
function secretNotice(what: string, accessKeyId: string, secretKey: string, extra = ''): string {
  return `${what}. The secret is shown only this once:\n  AWS_ACCESS_KEY_ID=${printable(accessKeyId)}\n  AWS_SECRET_ACCESS_KEY=${printable(secretKey)}\n${extra}`;
}

function tenantTable(tenants: TenantInfo[]): string {
  const rows = tenants.map((t) => [t.name, t.lockedDown ? 'locked down' : t.disabled ? 'disabled' : 'enabled', String(t.bucketCount), String(t.credentialCount), shortTime(t.createdAt), t.description]);
  return table(['NAME', 'STATUS', 'BUCKETS', 'CREDENTIALS', 'CREATED', 'DESCRIPTION'], rows);
}

function credentialTable(credentials: CredentialInfo[]): string {
  const rows = credentials.map((c) => [
    c.accessKeyId, c.tenant, c.name, c.status, shortTime(c.expiresAt), shortTime(c.lastUsedAt), c.scopes.map(formatScope).join(' '),
  ]);
  return table(['ACCESS KEY', 'TENANT', 'NAME', 'STATUS', 'EXPIRES', 'LAST USED', 'SCOPES'], rows);
}

const DENIAL_HEADERS = ['TIME', 'LAYER', 'ACTION', 'BUCKET/KEY', 'ACCESS KEY', 'REASON'];
const denialRow = (d: DenialRecord) => [
  shortTime(d.time), d.layer, d.action, d.bucket ? `${d.bucket}/${d.key ?? ''}` : '-', d.accessKeyId ?? '-', d.reason,
];
const AUDIT_HEADERS = ['TIME', 'ACTOR', 'ACTION', 'TENANT', 'TARGET', 'DETAILS'];
const auditRow = (a: AuditRecord) => [
  shortTime(a.time), a.actor, a.action, a.tenant ?? '-', a.accessKeyId ?? a.bucket ?? '-', a.details ? JSON.stringify(a.details) : '',
];

/** Prints a log query, then (with --follow) new lines as they come, in fixed columns. */
async function showLog<T>(run: CommandRun, spec: {
  kind: 'denials' | 'audit';
  query: Query;
  follow: FollowRequest;
  headers: string[];
  row: (record: T) => string[];
}): Promise<void> {
  const answer = await run.api.call('GET', `/${spec.kind}`, { query: spec.query });
  const records = answer[spec.kind] as T[];
  const asJson = run.values.json === true;
  if (asJson && !run.values.follow) run.out(json(records));
  else if (asJson) for (const r of records) run.out(JSON.stringify(r) + '\n');
  else if (!run.values.follow || records.length > 0) run.out(table(spec.headers, records.map(spec.row)));
  if (!run.values.follow) return;
  const widths = [19, 12, 24, 30, 22, 0];
  if (!asJson && records.length === 0) run.out(formatRow(spec.headers, widths) + '\n');
  await run.api.follow(spec.follow, (record: T) => run.out(asJson ? JSON.stringify(record) + '\n' : formatRow(spec.row(record), widths) + '\n'), run.signal);
}

const LOG_OPTIONS: Options = {
  since: { type: 'string' }, until: { type: 'string' }, tenant: { type: 'string' }, 'access-key': { type: 'string' },
  limit: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, ...JSON_OPT,
};

/** Every command, in the order help lists them. */
export const COMMANDS: Command[] = [
  {
    name: 'bootstrap', args: [], options: { tenant: { type: 'string' }, 'admin-name': { type: 'string' }, ...JSON_OPT },
    summary: 'create a tenant and an admin credential (all families on every bucket of the tenant)',
    examples: ['bootstrap --tenant acme --data-dir /var/lib/anvil', 'bootstrap --tenant acme --admin-name ops --json'],
    async run(run) {
      const tenant = str(run, 'tenant');
      if (!tenant) throw new UsageError('bootstrap needs --tenant NAME');
      const created = await run.api.call('POST', '/tenants', { body: { name: tenant, description: 'created by anvil bootstrap' } });
      const credential = await run.api.call('POST', '/credentials', {
        body: { tenant, name: str(run, 'admin-name') ?? 'admin', description: `admin of tenant ${tenant}`, scopes: [{ families: [...FAMILIES], bucket: '*' }] },
      });
      if (run.values.json) return run.out(json({ tenant: created, credential }));
      run.out(say`Tenant ${tenant} created.\n` + secretNotice(say`Admin credential ${credential.accessKeyId} created`, credential.accessKeyId, credential.secretKey));
    },
  },
  {
    name: 'tenant create', args: ['NAME'], options: { description: { type: 'string' }, ...JSON_OPT }, summary: 'create a tenant (root only)',
    async run(run) {
      const t = await run.api.call('POST', '/tenants', { body: { name: run.args[0], description: str(run, 'description') } });
      run.out(run.values.json ? json(t) : say`Tenant ${t.name} created.\n`);
    },
  },
  {
    name: 'tenant list', args: [], options: JSON_OPT, summary: 'list tenants (root only)',
    async run(run) {
      const { tenants } = await run.api.call('GET', '/tenants');
      run.out(run.values.json ? json(tenants) : tenantTable(tenants));
    },
  },
  {
    name: 'tenant show', args: ['NAME'], options: JSON_OPT, summary: 'show a tenant and its buckets',
    async run(run) {
      const t = await run.api.call('GET', `/tenants/${enc(run.args[0]!)}`);
      run.out(run.values.json ? json(t) : keyValues(t));
    },
  },
  ...(['disable', 'enable'] as const).map((verb): Command => ({
    name: `tenant ${verb}`, args: ['NAME'], options: JSON_OPT, summary: `${verb} a tenant (root only)${verb === 'disable' ? '; its credentials stop working' : ''}`,
    async run(run) {
      const t = await run.api.call('POST', `/tenants/${enc(run.args[0]!)}/${verb}`);
      run.out(run.values.json ? json(t) : say`Tenant ${run.args[0]} ${verb}d.\n`);
    },
  })),
  {
    name: 'tenant lockdown', args: ['NAME'], options: { lift: { type: 'boolean' }, reason: { type: 'string' }, ...JSON_OPT },
    summary: 'emergency stop (root only): every credential, session, capability and share link of the tenant refused; --lift undoes it',
    examples: ["tenant lockdown acme --reason 'key AKIA… leaked in a public repo'", "tenant lockdown acme --lift --reason 'leaked key revoked, others rotated'"],
    async run(run) {
      const reason = str(run, 'reason');
      if (!reason) throw new UsageError('tenant lockdown needs --reason TEXT (recorded in the audit log)');
      const lift = run.values.lift === true;
      const t = await run.api.call('POST', `/tenants/${enc(run.args[0]!)}/lockdown${lift ? '/lift' : ''}`, { body: { reason } });
      if (run.values.json) return run.out(json(t));
      if (lift) return run.out(say`Tenant ${t.name}: lockdown lifted; its live credentials work again.\n`);
      const c = t.cutOff;
      run.out(say`Tenant ${t.name} locked down: ${c.credentials} credential(s), every session, ${c.capabilities} capability(ies) and share link refused from the next request.\n`);
    },
  },
  {
    name: 'tenant delete', args: ['NAME'], options: {}, summary: 'delete a tenant and its credentials (root only; it must own no buckets)',
    async run(run) {
      await run.api.call('DELETE', `/tenants/${enc(run.args[0]!)}`);
      run.out(say`Tenant ${run.args[0]} deleted.\n`);
    },
  },
  {
    name: 'credential create', args: [],
    options: {
      tenant: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' },
      scope: { type: 'string', multiple: true }, expires: { type: 'string' }, ...JSON_OPT,
    },
    summary: "create a credential: --name N --scope 'object:read,object:list@bucket/prefix' (repeatable) [--tenant T] [--expires 30d|ISO]",
    examples: [
      "credential create --tenant acme --name reports --scope 'object:read,object:list@data/reports/' --expires 30d",
      "credential create --name backup --scope 'object:write,object:list@backups/host1/' --scope 'bucket:read@*'",
    ],
    async run(run) {
      const name = str(run, 'name');
      const scopes = ((run.values.scope as string[] | undefined) ?? []).map(parseScope);
      if (!name) throw new UsageError('credential create needs --name NAME');
      if (scopes.length === 0) throw new UsageError('credential create needs at least one --scope');
      const body = { tenant: str(run, 'tenant'), name, description: str(run, 'description'), scopes, expiresAt: timeArg('expires', str(run, 'expires'), 1) };
      const c = await run.api.call('POST', '/credentials', { body });
      if (run.values.json) return run.out(json(c));
      run.out(secretNotice(say`Credential ${c.accessKeyId} (${c.name}, tenant ${c.tenant}) created`, c.accessKeyId, c.secretKey));
    },
  },
  {
    name: 'credential list', args: [], options: { tenant: { type: 'string' }, ...JSON_OPT }, summary: 'list credentials (never secrets)',
    async run(run) {
      const { credentials } = await run.api.call('GET', '/credentials', { query: { tenant: str(run, 'tenant') } });
      run.out(run.values.json ? json(credentials) : credentialTable(credentials));
    },
  },
  {
    name: 'credential show', args: ['ID'], options: JSON_OPT, summary: 'show one credential',
    async run(run) {
      const c = await run.api.call('GET', `/credentials/${enc(run.args[0]!)}`);
      run.out(run.values.json ? json(c) : keyValues({ ...c, scopes: c.scopes.map(formatScope).join(' ') }));
    },
  },
  {
    name: 'credential rotate', args: ['ID'], options: { grace: { type: 'string' }, ...JSON_OPT },
    summary: 'give a credential a new secret; the old one keeps working for --grace SECONDS (default 0)',
    async run(run) {
      const grace = str(run, 'grace') ?? '0';
      if (!/^\d+$/.test(grace)) throw new UsageError('--grace takes a number of seconds');
      const r = await run.api.call('POST', `/credentials/${enc(run.args[0]!)}/rotate`, { body: { graceSeconds: Number(grace) } });
      if (run.values.json) return run.out(json(r));
      const until = r.previousSecretValidUntil ? say`The previous secret keeps working until ${r.previousSecretValidUntil}.\n` : 'The previous secret no longer works.\n';
      run.out(secretNotice(say`Credential ${r.accessKeyId} rotated`, r.accessKeyId, r.secretKey, until));
    },
  },
  {
    name: 'credential revoke', args: ['[ID]'], options: { tenant: { type: 'string' }, all: { type: 'boolean' }, ...JSON_OPT },
    summary: 'revoke a credential (refused from its next request on); --tenant T --all revokes every credential of T',
    examples: ['credential revoke AKIAIOSFODNN7EXAMPLE', 'credential revoke --tenant acme --all'],
    async run(run) {
      const [id] = run.args;
      const tenant = str(run, 'tenant');
      if (run.values.all !== true) {
        if (id === undefined) throw new UsageError('credential revoke needs an ID, or --tenant T --all');
        const c = await run.api.call('POST', `/credentials/${enc(id)}/revoke`);
        return run.out(run.values.json ? json(c) : say`Credential ${id} revoked.\n`);
      }
      if (id !== undefined) throw new UsageError('give an ID or --all, not both');
      if (!tenant) throw new UsageError('credential revoke --all needs --tenant NAME');
      const r = await run.api.call('POST', `/tenants/${enc(tenant)}/credentials/revoke`);
      if (run.values.json) return run.out(json(r));
      run.out(say`Tenant ${tenant}: ${r.revoked.length} credential(s) revoked.\n`);
      for (const f of r.refused as Array<{ accessKeyId: string; reason: string }>) run.out(say`  not revoked: ${f.accessKeyId} (${f.reason})\n`);
      if (r.partial === true) run.out('  credentials beyond your authority, if any, were neither revoked nor shown: ask a tenant-wide admin or root\n');
      if (r.refused.length > 0 || r.partial === true) return 1;
    },
  },
  {
    name: 'credential delete', args: ['ID'], options: {}, summary: 'delete a credential',
    async run(run) {
      await run.api.call('DELETE', `/credentials/${enc(run.args[0]!)}`);
      run.out(say`Credential ${run.args[0]} deleted.\n`);
    },
  },
  {
    name: 'bucket list', args: [], options: JSON_OPT, summary: 'list buckets and their owning tenants',
    async run(run) {
      const { buckets } = await run.api.call('GET', '/buckets');
      run.out(run.values.json ? json(buckets) : table(['BUCKET', 'TENANT'], buckets.map((b: { name: string; tenant: string }) => [b.name, b.tenant])));
    },
  },
  {
    name: 'bucket assign', args: ['BUCKET'], options: { tenant: { type: 'string' }, reassign: { type: 'boolean' }, ...JSON_OPT },
    summary: 'make a tenant own a bucket (root only; --reassign to move it from another tenant)',
    async run(run) {
      const tenant = str(run, 'tenant');
      if (!tenant) throw new UsageError('bucket assign needs --tenant NAME');
      const b = await run.api.call('PUT', `/buckets/${enc(run.args[0]!)}/owner`, { body: { tenant, reassign: run.values.reassign === true } });
      run.out(run.values.json ? json(b) : say`Bucket ${b.name} now belongs to tenant ${b.tenant}.\n`);
    },
  },
  {
    name: 'denials', args: [],
    options: { ...LOG_OPTIONS, layer: { type: 'string' }, bucket: { type: 'string' }, 'key-prefix': { type: 'string' } },
    summary: 'refused requests: [--since 1h|ISO] [--until] [--tenant] [--access-key] [--layer] [--bucket] [--key-prefix] [--limit N] [--follow]',
    examples: ['denials --since 1h --layer scope', 'denials --bucket backups --key-prefix host1/ --json', 'denials --follow'],
    async run(run) {
      const filter = {
        tenant: str(run, 'tenant'), accessKeyId: str(run, 'access-key'), layer: str(run, 'layer') as DenialLayer | undefined,
        bucket: str(run, 'bucket'), keyPrefix: str(run, 'key-prefix'),
      };
      const query = {
        ...logWindow(run), tenant: filter.tenant, accessKey: filter.accessKeyId, layer: filter.layer, bucket: filter.bucket, keyPrefix: filter.keyPrefix,
      };
      await showLog<DenialRecord>(run, { kind: 'denials', query, follow: { kind: 'denials', filter }, headers: DENIAL_HEADERS, row: denialRow });
    },
  },
  {
    name: 'audit', args: [], options: { ...LOG_OPTIONS, actor: { type: 'string' }, action: { type: 'string' } },
    summary: 'changes made: [--since 1h|ISO] [--until] [--tenant] [--actor] [--action] [--access-key] [--limit N] [--follow]',
    async run(run) {
      const filter = { tenant: str(run, 'tenant'), accessKeyId: str(run, 'access-key'), actor: str(run, 'actor'), action: str(run, 'action') };
      const query = { ...logWindow(run), tenant: filter.tenant, accessKey: filter.accessKeyId, actor: filter.actor, action: filter.action };
      await showLog<AuditRecord>(run, { kind: 'audit', query, follow: { kind: 'audit', filter }, headers: AUDIT_HEADERS, row: auditRow });
    },
  },
  ...AUDIT_COMMANDS,
  ...TOKEN_COMMANDS,
  ...RELATIONSHIP_COMMANDS,
  ...PROFILE_COMMANDS,
  MIGRATE_COMMAND,
];

function logWindow(run: CommandRun): Query {
  const limit = str(run, 'limit');
  if (limit !== undefined && !/^\d+$/.test(limit)) throw new UsageError('--limit takes a number');
  return { since: timeArg('since', str(run, 'since'), -1), until: timeArg('until', str(run, 'until'), -1), limit };
}
