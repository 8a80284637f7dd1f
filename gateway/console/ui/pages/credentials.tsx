/**
 * Credentials: the inventory (tenant, job description, scopes, created, last used, expiry, status) with the access
 * audit's findings beside each credential, and rotate and revoke behind a confirmation. What the list holds and what
 * the buttons may do is the admin API's decision; a refusal is shown as it words it.
 */
import { useEffect, useState } from 'preact/hooks';
import { admin, formatGrant, query, shortTime, type Grant, type Session } from '../api.ts';
import { Command, Dialog, ErrorNote, Severity, TenantPicker } from '../components.tsx';

interface Credential {
  accessKeyId: string;
  tenant: string;
  name: string;
  description: string;
  isRoot: boolean;
  scopes: Grant[];
  status: 'active' | 'revoked' | 'expired' | 'tenant_disabled' | 'maker_gone';
  createdAt: string;
  expiresAt?: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

/** One audit finding, as GET /audit/check answers. */
export interface Finding {
  id: string;
  check: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  tenant?: string;
  accessKeyId?: string;
  subject: string;
  message: string;
  fix: string;
  new: boolean;
}

type Pending = { kind: 'rotate' | 'revoke'; credential: Credential } | undefined;

/** The credentials page: the inventory with findings inline, rotate and revoke. */
export function CredentialsPage(props: { session: Session }) {
  const [tenant, setTenant] = useState('');
  const [credentials, setCredentials] = useState<Credential[]>([]);
  const [findings, setFindings] = useState<Map<string, Finding[]>>(new Map());
  const [error, setError] = useState<unknown>();
  const [auditError, setAuditError] = useState<unknown>();
  const [pending, setPending] = useState<Pending>();
  const [grace, setGrace] = useState('0');
  const [secret, setSecret] = useState<{ accessKeyId: string; secretKey: string; previousSecretValidUntil?: string }>();
  const [done, setDone] = useState('');

  const load = async () => {
    setError(undefined);
    try {
      setCredentials((await admin<{ credentials: Credential[] }>('GET', `/credentials${query({ tenant })}`)).credentials);
    } catch (e) {
      setError(e);
      setCredentials([]);
    }
    try {
      const report = await admin<{ findings: Finding[] }>('GET', `/audit/check${query({ tenant })}`);
      const byKey = new Map<string, Finding[]>();
      for (const f of report.findings) if (f.accessKeyId) byKey.set(f.accessKeyId, [...(byKey.get(f.accessKeyId) ?? []), f]);
      setFindings(byKey);
      setAuditError(undefined);
    } catch (e) {
      setAuditError(e);
    }
  };
  useEffect(() => {
    void load();
  }, [tenant]);

  const act = async () => {
    if (!pending) return;
    const { kind, credential } = pending;
    setPending(undefined);
    try {
      const id = encodeURIComponent(credential.accessKeyId);
      if (kind === 'rotate') setSecret(await admin('POST', `/credentials/${id}/rotate`, { graceSeconds: Number(grace) || 0 }));
      else {
        await admin('POST', `/credentials/${id}/revoke`, {});
        setDone(`Credential ${credential.accessKeyId} revoked: it is refused from its next request.`);
      }
    } catch (e) {
      setError(e);
    }
    await load();
  };

  return (
    <section aria-labelledby="page-title">
      <div class="filters">
        <TenantPicker session={props.session} value={tenant} onChange={setTenant} any id="credentials-tenant" />
        <button type="button" class="secondary" onClick={() => void load()}>Refresh</button>
      </div>
      <ErrorNote error={error} />
      {auditError ? <p class="muted">Audit findings are not shown: {(auditError as Error).message}</p> : null}
      <p role="status" class="visually-hidden">{done}</p>
      {done && <p class="notice">{done}</p>}
      <div class="scroll" role="region" aria-label="Credentials" tabIndex={0}>
        <table class="inventory">
          <thead>
            <tr>
              <th scope="col">Access key</th><th scope="col">Tenant</th><th scope="col">Job</th><th scope="col">Scopes</th>
              <th scope="col">Status</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th>
              <th scope="col">Findings</th><th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {credentials.map((c) => (
              <tr key={c.accessKeyId} data-access-key={c.accessKeyId}>
                <th scope="row"><code>{c.accessKeyId}</code></th>
                <td>{c.tenant}</td>
                <td><strong>{c.name}</strong>{c.description && <div class="muted">{c.description}</div>}</td>
                <td>{c.scopes.map((g) => <div key={formatGrant(g)}><code>{formatGrant(g)}</code></div>)}</td>
                <td><span class={`status status-${c.status}`}>{c.status}</span></td>
                <td>{shortTime(c.createdAt)}</td>
                <td>{c.lastUsedAt ? shortTime(c.lastUsedAt) : 'never'}</td>
                <td>{c.expiresAt ? shortTime(c.expiresAt) : 'never'}</td>
                <td>
                  {(findings.get(c.accessKeyId) ?? []).map((f) => (
                    <details key={f.id} class="finding">
                      <summary><Severity level={f.severity} /> {f.check}</summary>
                      <p>{f.message}</p>
                      <Command text={f.fix} />
                    </details>
                  ))}
                </td>
                <td class="actions">
                  {!c.isRoot && c.status !== 'revoked' && (
                    <>
                      <button type="button" class="secondary" onClick={() => { setGrace('0'); setPending({ kind: 'rotate', credential: c }); }} aria-label={`Rotate ${c.accessKeyId}`}>Rotate</button>
                      <button type="button" class="danger" onClick={() => setPending({ kind: 'revoke', credential: c })} aria-label={`Revoke ${c.accessKeyId}`}>Revoke</button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <Dialog open={pending?.kind === 'revoke'} title="Revoke credential" onClose={() => setPending(undefined)}>
        <p>Revoke <code>{pending?.credential.accessKeyId}</code> ({pending?.credential.name}, tenant {pending?.credential.tenant})? Every gateway refuses it from its next request, with everything it made. This cannot be undone.</p>
        <div class="buttons">
          <button type="button" class="secondary" onClick={() => setPending(undefined)} autoFocus>Cancel</button>
          <button type="button" class="danger" onClick={() => void act()}>Revoke {pending?.credential.accessKeyId}</button>
        </div>
      </Dialog>

      <Dialog open={pending?.kind === 'rotate'} title="Rotate credential" onClose={() => setPending(undefined)}>
        <p>Give <code>{pending?.credential.accessKeyId}</code> a new secret. The new secret is shown once.</p>
        <label for="grace">Seconds the old secret keeps working</label>
        <input id="grace" type="number" min={0} max={2592000} value={grace} onInput={(e) => setGrace((e.currentTarget as HTMLInputElement).value)} />
        <div class="buttons">
          <button type="button" class="secondary" onClick={() => setPending(undefined)} autoFocus>Cancel</button>
          <button type="button" onClick={() => void act()}>Rotate {pending?.credential.accessKeyId}</button>
        </div>
      </Dialog>

      <Dialog open={secret !== undefined} title="New secret" onClose={() => setSecret(undefined)}>
        <p>The new secret of <code>{secret?.accessKeyId}</code> is shown only this once. {secret?.previousSecretValidUntil ? `The previous secret works until ${shortTime(secret.previousSecretValidUntil)}.` : 'The previous secret no longer works.'}</p>
        <label for="new-secret">Secret access key</label>
        <input id="new-secret" readOnly value={secret?.secretKey ?? ''} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <div class="buttons"><button type="button" onClick={() => setSecret(undefined)} autoFocus>Done</button></div>
      </Dialog>
    </section>
  );
}
