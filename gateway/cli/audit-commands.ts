/**
 * The access audit on the command line: `anvil audit check` runs every check through the admin API (which records
 * the run), prints one line per finding with its severity and the command that fixes it, and exits 1 when a finding
 * is at or above --fail-on, so cron or CI can run it.
 */
import { audit } from '../../policy/index.ts';
import type { Command, CommandRun } from './command.ts';
import { say, table, UsageError } from './format.ts';

const str = (run: CommandRun, name: string) => run.values[name] as string | undefined;

/** Thresholds by option name: the admin API field each fills. */
const THRESHOLDS = { days: 'days', 'key-age': 'keyAgeDays', 'max-addresses': 'maxAddresses', 'max-agents': 'maxAgents' } as const;

/** The exit code of a report: 1 when any finding listed is at or above `failOn` (`none`: never). */
export function auditExitCode(findings: Array<{ severity: audit.Severity }>, failOn: audit.Severity | 'none'): number {
  if (failOn === 'none') return 0;
  return findings.some((f) => audit.severityRank(f.severity) >= audit.severityRank(failOn)) ? 1 : 0;
}

/** The summary line under the table. */
function summary(report: { findings: Array<{ new: boolean }>; counts: audit.SeverityCounts; resolved: number; previousRun?: { time: string; actor: string }; sinceLast?: boolean }): string {
  const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
  const by = [...audit.SEVERITIES].reverse().filter((s) => report.counts[s] > 0).map((s) => `${report.counts[s]} ${s}`);
  const previous = report.previousRun
    ? say`; ${report.findings.filter((f) => f.new).length} new and ${report.resolved} resolved since the run of ${report.previousRun.time} by ${report.previousRun.actor}`
    : '; no earlier run to compare with';
  return say`${total} finding(s)${by.length > 0 ? `: ${by.join(', ')}` : ''}${previous}${report.sinceLast ? ' (only the new ones are listed)' : ''}\n`;
}

/** The audit commands, in the order help lists them. */
export const AUDIT_COMMANDS: Command[] = [
  {
    name: 'audit check', args: [],
    options: {
      tenant: { type: 'string' }, days: { type: 'string' }, 'key-age': { type: 'string' }, 'max-addresses': { type: 'string' },
      'max-agents': { type: 'string' }, 'fail-on': { type: 'string' }, 'since-last': { type: 'boolean' }, json: { type: 'boolean' },
    },
    summary: 'run the access audit: one line per finding with its severity and fixing command; exit 1 at or above --fail-on (high)',
    examples: ['audit check', 'audit check --tenant acme --days 14 --fail-on medium', 'audit check --since-last --json'],
    async run(run) {
      const failOn = (str(run, 'fail-on') ?? 'high') as audit.Severity | 'none';
      if (failOn !== 'none' && !(audit.SEVERITIES as readonly string[]).includes(failOn)) {
        throw new UsageError(`--fail-on takes one of ${audit.SEVERITIES.join(', ')} or none`);
      }
      const body: Record<string, unknown> = { tenant: str(run, 'tenant'), sinceLast: run.values['since-last'] === true };
      for (const [option, field] of Object.entries(THRESHOLDS)) {
        const value = str(run, option);
        if (value === undefined) continue;
        if (!/^[1-9]\d{0,5}$/.test(value)) throw new UsageError(`--${option} takes a whole number of at least 1`);
        body[field] = Number(value);
      }
      const report = await run.api.call('POST', '/audit/check', { body });
      const findings = report.findings as Array<audit.Finding & { new: boolean }>;
      if (run.values.json) run.out(JSON.stringify(report, null, 2) + '\n');
      else {
        const rows = findings.map((f) => [f.severity, f.check, f.tenant ?? '-', `${f.new && report.previousRun ? '(new) ' : ''}${f.message}`, f.fix]);
        if (rows.length > 0) run.out(table(['SEVERITY', 'CHECK', 'TENANT', 'FINDING', 'FIX'], rows));
        run.out(summary(report));
      }
      return auditExitCode(findings, failOn);
    },
  },
];
