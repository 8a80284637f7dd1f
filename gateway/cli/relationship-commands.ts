/**
 * The CLI's relationship commands: bucket governance, schemas, tuples, checks and the watch feed, each one admin
 * API call (the watch feed a stream of them). `--tenant` names the tenant for root and the local operator; a tenant
 * credential acts in its own tenant.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { relationships as rel } from '../../policy/index.ts';
import type { Command, CommandRun } from './command.ts';
import { keyValues, printable, printableLines, say, table, UsageError } from './format.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

const TENANT: Options = { tenant: { type: 'string' }, json: { type: 'boolean' } };
const REASON: Options = { ...TENANT, reason: { type: 'string' } };
const str = (run: CommandRun, name: string) => run.values[name] as string | undefined;
const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
const enc = encodeURIComponent;

function reasonOf(run: CommandRun, command: string): string {
  const reason = str(run, 'reason');
  if (!reason) throw new UsageError(`${command} needs --reason TEXT (recorded in the audit trail)`);
  return reason;
}

function readArgFile(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

function tupleCommand(verb: 'write' | 'delete'): Command {
  return {
    name: `tuples ${verb}`, args: ['TUPLE'], options: { ...REASON, ...(verb === 'write' ? { create: { type: 'boolean' } } : {}) },
    summary: verb === 'write'
      ? "write one tuple, e.g. 'folder:photos/2024/#reader@user:amy' --reason R [--create: fail if it exists]"
      : "delete one tuple, e.g. 'document:doc-42#viewer@user:amy' --reason R",
    async run(run) {
      const op = verb === 'delete' ? 'delete' : run.values.create ? 'create' : 'touch';
      const body = { tenant: str(run, 'tenant'), updates: [{ op, tuple: run.args[0] }], reason: reasonOf(run, `tuples ${verb}`) };
      const r = await run.api.call('POST', '/tuples', { body });
      run.out(run.values.json ? json(r) : say`Tuple ${verb === 'delete' ? 'deleted' : 'written'} at revision ${r.revision}.\n`);
    },
  };
}

/** The relationship commands, in the order help lists them. */
export const RELATIONSHIP_COMMANDS: Command[] = [
  {
    name: 'bucket govern', args: ['BUCKET'], options: { off: { type: 'boolean' }, json: { type: 'boolean' } },
    summary: 'make relationships govern a bucket (deploys the default object schema when the tenant has none); --off to stop',
    async run(run) {
      const b = await run.api.call('PUT', `/buckets/${enc(run.args[0]!)}/governance`, { body: { governed: run.values.off !== true } });
      if (run.values.json) return run.out(json(b));
      run.out(say`Bucket ${b.bucket} is ${b.governed ? 'governed by relationships' : 'no longer governed by relationships'}.\n`);
      if (b.schemaDeployed) run.out(say`Deployed the default object schema for tenant ${b.tenant}.\n`);
    },
  },
  {
    name: 'schema show', args: [], options: TENANT, summary: "show a tenant's relationship schema and its caveat hashes",
    async run(run) {
      const s = await run.api.call('GET', '/schema', { query: { tenant: str(run, 'tenant') } });
      if (run.values.json) return run.out(json(s));
      const caveats = s.caveats.map((c: { name: string; hash: string }) => say`# caveat ${c.name}: hash ${c.hash}`).join('\n');
      run.out(say`# tenant ${s.tenant}, revision ${s.revision}\n` + (caveats ? caveats + '\n' : '') + printableLines(s.schema));
    },
  },
  {
    name: 'schema write', args: ['FILE'], options: REASON, summary: 'deploy a schema from FILE (- for stdin) --reason R (admin only)',
    async run(run) {
      const body = { tenant: str(run, 'tenant'), schema: readArgFile(run.args[0]!), reason: reasonOf(run, 'schema write') };
      const r = await run.api.call('PUT', '/schema', { body });
      run.out(run.values.json ? json(r) : say`Schema of tenant ${r.tenant} written at revision ${r.revision}.\n`);
    },
  },
  {
    name: 'schema diff', args: ['FILE'], options: TENANT, summary: 'what deploying FILE would change about who can hold each permission',
    async run(run) {
      const d = await run.api.call('POST', '/schema/diff', { body: { tenant: str(run, 'tenant'), schema: readArgFile(run.args[0]!) } });
      if (run.values.json) return run.out(json(d));
      const changed = d.permissions.filter((p: { change: string }) => p.change !== 'unchanged');
      const rows = changed.map((p: { permission: string; change: string; grantedByAdded: string[]; grantedByRemoved: string[]; subjectTypesAdded: string[]; subjectTypesRemoved: string[] }) => [
        p.permission, p.change,
        [...p.grantedByAdded.map((x) => `+${x}`), ...p.grantedByRemoved.map((x) => `-${x}`)].join(' '),
        [...p.subjectTypesAdded.map((x) => `+${x}`), ...p.subjectTypesRemoved.map((x) => `-${x}`)].join(' '),
      ]);
      run.out(rows.length ? table(['PERMISSION', 'CHANGE', 'GRANTED BY', 'SUBJECT TYPES'], rows) : 'No permission changes.\n');
      for (const c of d.caveats) run.out(say`caveat ${c.name}: ${c.change}${c.change === 'changed' ? ' (tuples written against the old definition will fail closed)' : ''}\n`);
    },
  },
  {
    name: 'schema validate', args: ['FILE'], options: {},
    summary: "run a zed validation file (schema, relationships, assertions, validation) locally; exit 1 on any failure",
    async run(run) {
      const path = run.args[0]!;
      readArgFile(path);
      const report = await rel.runValidationPath(path);
      run.out(printableLines(rel.formatValidationReport(report, path)));
      if (report.failures.length > 0) throw new Error(`${path}: ${report.failures.length} validation failure(s)`);
    },
  },
  tupleCommand('write'),
  tupleCommand('delete'),
  {
    name: 'tuples prune-leftovers', args: [], options: REASON,
    summary: "delete every tuple audit check reports as leftover-tuple (its writer no longer holds what it handed out) --reason R (tenant-wide admin)",
    examples: ['tuples prune-leftovers --tenant acme --reason "writers narrowed in the March re-org"'],
    async run(run) {
      const r = await run.api.call('POST', '/tuples/prune-leftovers', { body: { tenant: str(run, 'tenant'), reason: reasonOf(run, 'tuples prune-leftovers') } });
      if (run.values.json) return run.out(json(r));
      for (const t of r.tuples as Array<{ tuple: string; writer: string; why: string }>) run.out(say`${t.tuple}\twritten by ${t.writer}: ${t.why}\n`);
      run.out(r.deleted > 0 ? say`Deleted ${r.deleted} leftover tuple(s) of tenant ${r.tenant} at revision ${r.revision}.\n` : say`No leftover tuples in tenant ${r.tenant}.\n`);
    },
  },
  {
    name: 'tuples import', args: ['FILE'], options: { ...REASON, name: { type: 'string' } },
    summary: 'import tuples from FILE (one per line, # comments) --reason R, all or nothing (admin only)',
    examples: ['tuples import grants.txt --tenant acme --reason "migration from the old ACLs"'],
    async run(run) {
      // Streamed as the request body in remote mode: no JSON body limit applies, whatever the file's size.
      const query = { tenant: str(run, 'tenant'), name: str(run, 'name') ?? run.args[0], reason: reasonOf(run, 'tuples import') };
      const r = await run.api.upload('POST', '/tuples/import', query, run.args[0] === '-' ? '/dev/stdin' : run.args[0]!);
      run.out(run.values.json ? json(r) : say`Imported ${r.count} tuple(s) at revision ${r.revision} (sha256 ${r.digest}).\n`);
    },
  },
  {
    name: 'tuples export', args: [], options: { ...TENANT, format: { type: 'string' } },
    summary: 'print the tenant as zed reads it: --format yaml (schema + relationships, default) | relationships | schema',
    async run(run) {
      const r = await run.api.call('GET', '/tuples/export', { query: { tenant: str(run, 'tenant'), format: str(run, 'format') } });
      run.out(run.values.json ? json(r) : printableLines(r.text));
    },
  },
  {
    name: 'tuples restore', args: ['FILE'], options: { ...REASON, name: { type: 'string' } },
    summary: 'restore an export (its schema and tuples) from FILE (- for stdin) --reason R, all or nothing (admin only)',
    async run(run) {
      // Streamed like an import: an export of any size restores.
      const query = { tenant: str(run, 'tenant'), name: str(run, 'name') ?? run.args[0], reason: reasonOf(run, 'tuples restore') };
      const r = await run.api.upload('POST', '/tuples/restore', query, run.args[0] === '-' ? '/dev/stdin' : run.args[0]!);
      run.out(run.values.json ? json(r) : say`Restored ${r.count} tuple(s) at revision ${r.revision} (sha256 ${r.digest}).\n`);
    },
  },
  {
    name: 'tuples list', args: [],
    options: { ...TENANT, type: { type: 'string' }, id: { type: 'string' }, relation: { type: 'string' }, subject: { type: 'string' }, limit: { type: 'string' } },
    summary: 'list tuples: --type T [--id ID] [--relation R] [--subject type:id[#relation]] [--limit N]',
    async run(run) {
      const type = str(run, 'type');
      if (!type) throw new UsageError('tuples list needs --type RESOURCE_TYPE');
      const subject = str(run, 'subject');
      // The one tuple parser decodes the subject, so its escapes mean here what they mean in a tuple.
      let parsed: rel.SubjectRef | undefined;
      try {
        parsed = subject === undefined ? undefined : rel.parseSubject(subject);
      } catch (error) {
        throw new UsageError(`--subject takes type:id or type:id#relation: ${(error as Error).message}`);
      }
      const query = {
        tenant: str(run, 'tenant'), resourceType: type, resourceId: str(run, 'id'), relation: str(run, 'relation'),
        subjectType: parsed?.type, subjectId: parsed?.id, subjectRelation: parsed?.relation, limit: str(run, 'limit'),
      };
      const r = await run.api.call('GET', '/tuples', { query });
      run.out(run.values.json ? json(r.tuples) : r.tuples.map((t: string) => printable(t) + '\n').join(''));
    },
  },
  {
    name: 'check', args: ['RESOURCE', 'PERMISSION', 'SUBJECT'], options: { ...TENANT, explain: { type: 'boolean' }, context: { type: 'string' } },
    summary: "decide a permission, e.g. check object:photos/a.jpg read user:amy [--explain] [--context '{\"client_ip\":\"10.0.0.1\"}']",
    examples: ['check object:photos/2024/trip/a.jpg read user:amy --tenant acme --explain'],
    async run(run) {
      let context: unknown;
      try {
        context = str(run, 'context') === undefined ? undefined : JSON.parse(str(run, 'context')!);
      } catch {
        throw new UsageError('--context takes a JSON object');
      }
      const [resource, permission, subject] = run.args;
      const body = { tenant: str(run, 'tenant'), resource, permission, subject, context, explain: run.values.explain === true };
      const r = await run.api.call('POST', '/check', { body });
      if (run.values.json) return run.out(json(r));
      run.out(keyValues({ result: r.result, reason: r.reason, missing: r.missing?.length ? r.missing.join(', ') : undefined }));
      if (run.values.explain && r.path?.length) run.out(r.path.map((step: string) => say`  ${step}\n`).join(''));
    },
  },
  {
    name: 'watch', args: [], options: { ...TENANT, after: { type: 'string' } },
    summary: "follow the tenant's tuple and schema changes [--after REVISION]; each line names its revision",
    async run(run) {
      await run.api.events('/watch', { tenant: str(run, 'tenant'), after: str(run, 'after') }, (event) => {
        if (run.values.json) return run.out(event.data + '\n');
        const e = JSON.parse(event.data) as { revision: string; kind: string; tuple?: unknown; caveat?: { name: string; hash: string | null }; at: string };
        const what = e.tuple ? formatTupleJson(e.tuple) : e.caveat ? `${e.caveat.name} ${e.caveat.hash ?? '(removed)'}` : '';
        run.out(say`${e.revision}  ${e.at}  ${e.kind.padEnd(12)}  ${what}\n`);
      }, run.signal);
    },
  },
];

function formatTupleJson(t: unknown): string {
  const x = t as { resource: { type: string; id: string }; relation: string; subject: { type: string; id: string; relation?: string }; caveat?: { name: string }; expiration?: string };
  return `${x.resource.type}:${x.resource.id}#${x.relation}@${x.subject.type}:${x.subject.id}${x.subject.relation ? `#${x.subject.relation}` : ''}${x.caveat ? ` [${x.caveat.name}]` : ''}${x.expiration ? ` [expiration:${x.expiration}]` : ''}`;
}
