/**
 * Audit: the access audit's findings now (each with its severity, whether the last recorded run had it, and the
 * command that fixes it), a button that runs and records the check as `anvil audit check` does, and the history of
 * recorded runs.
 */
import { useEffect, useState } from 'preact/hooks';
import { admin, query, shortTime, type Session } from '../api.ts';
import { Command, ErrorNote, Severity, TenantPicker } from '../components.tsx';
import type { Finding } from './credentials.tsx';

type Counts = Record<'low' | 'medium' | 'high' | 'critical', number>;

interface Report {
  time: string;
  tenant: string;
  findings: Finding[];
  counts: Counts;
  resolved: number;
  previousRun?: { time: string; actor: string };
}

interface Run {
  time: string;
  actor: string;
  tenant: string;
  counts: Counts;
  total: number;
  new: number;
  resolved: number;
}

const LEVELS = ['critical', 'high', 'medium', 'low'] as const;
const OPTIONS = [
  { name: 'days', label: 'Window (days)', value: 30 },
  { name: 'keyAgeDays', label: 'Root key age (days)', value: 90 },
  { name: 'maxAddresses', label: 'Addresses per key', value: 5 },
  { name: 'maxAgents', label: 'User agents per key', value: 3 },
] as const;

/** The audit page: findings now, run and record, recorded runs. */
export function AuditPage(props: { session: Session }) {
  const [tenant, setTenant] = useState('');
  const [options, setOptions] = useState<Record<string, string>>(Object.fromEntries(OPTIONS.map((o) => [o.name, String(o.value)])));
  const [report, setReport] = useState<Report & { recorded?: boolean }>();
  const [runs, setRuns] = useState<Run[]>([]);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const numbers = () => Object.fromEntries(Object.entries(options).map(([k, v]) => [k, Number(v)]));
  const history = async () => setRuns((await admin<{ runs: Run[] }>('GET', `/audit/checks${query({ tenant, limit: 50 })}`)).runs.reverse());
  const preview = async () => {
    setError(undefined);
    try {
      setReport(await admin<Report>('GET', `/audit/check${query({ tenant, ...options })}`));
      await history();
    } catch (e) {
      setError(e);
    }
  };
  const record = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setReport({ ...(await admin<Report>('POST', '/audit/check', { ...(tenant ? { tenant } : {}), ...numbers() })), recorded: true });
      await history();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void preview();
  }, [tenant]);

  return (
    <section aria-labelledby="page-title">
      <form class="filters" onSubmit={(e) => { e.preventDefault(); void preview(); }}>
        <TenantPicker session={props.session} value={tenant} onChange={setTenant} any id="audit-tenant" />
        {OPTIONS.map((o) => (
          <div class="field" key={o.name}>
            <label for={`opt-${o.name}`}>{o.label}</label>
            <input id={`opt-${o.name}`} type="number" min={1} value={options[o.name]} onInput={(e) => setOptions({ ...options, [o.name]: (e.currentTarget as HTMLInputElement).value })} />
          </div>
        ))}
        <button type="submit" class="secondary">Check now</button>
        <button type="button" onClick={() => void record()} disabled={busy}>{busy ? 'Running…' : 'Run and record'}</button>
      </form>
      <ErrorNote error={error} />
      {report && (
        <>
          <h2>{report.recorded ? `Recorded run of ${shortTime(report.time)}` : `Findings now (${shortTime(report.time)}, not recorded)`}</h2>
          <p role="status">
            {report.findings.length} finding{report.findings.length === 1 ? '' : 's'}
            {LEVELS.filter((l) => report.counts[l] > 0).map((l) => <span key={l}> · <Severity level={l} /> {report.counts[l]}</span>)}
            {report.previousRun ? ` · compared with the run of ${shortTime(report.previousRun.time)} by ${report.previousRun.actor}: ${report.findings.filter((f) => f.new).length} new, ${report.resolved} resolved` : ' · no recorded run to compare with'}
          </p>
          {report.findings.length > 0 && (
            <div class="scroll" role="region" aria-label="Findings" tabIndex={0}>
              <table class="findings">
                <thead><tr><th scope="col">Severity</th><th scope="col">Check</th><th scope="col">Tenant</th><th scope="col">Finding</th><th scope="col">Fix</th></tr></thead>
                <tbody>
                  {report.findings.map((f) => (
                    <tr key={f.id} data-check={f.check}>
                      <td><Severity level={f.severity} /></td>
                      <td>{f.check}</td>
                      <td>{f.tenant ?? '—'}</td>
                      <td>{f.new && report.previousRun ? <span class="badge new">new</span> : null} {f.message}</td>
                      <td><Command text={f.fix} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      <h2>Recorded runs</h2>
      {runs.length === 0 ? <p class="muted">No run recorded yet: <code>anvil audit check</code> (from cron or CI) or “Run and record” records one.</p> : (
        <div class="scroll" role="region" aria-label="Recorded runs" tabIndex={0}>
          <table class="runs">
            <thead><tr><th scope="col">Time</th><th scope="col">By</th><th scope="col">Tenant</th>{LEVELS.map((l) => <th key={l} scope="col">{l}</th>)}<th scope="col">Total</th><th scope="col">New</th><th scope="col">Resolved</th></tr></thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.time + r.actor}>
                  <td>{shortTime(r.time)}</td><td><code>{r.actor}</code></td><td>{r.tenant}</td>
                  {LEVELS.map((l) => <td key={l}>{r.counts?.[l] ?? 0}</td>)}
                  <td>{r.total}</td><td>{r.new}</td><td>{r.resolved}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
