/**
 * Pieces every page uses: a confirmation dialog (the native <dialog>, which traps focus and closes on Escape), an
 * error line that screen readers announce, the tenant picker root sees (a tenant admin acts in its own tenant), and
 * severity badges.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { admin, ApiError, type Session } from './api.ts';

/** A modal dialog: open while `open`; Escape or the cancel button call onClose. */
export function Dialog(props: { open: boolean; title: string; onClose: () => void; children: ComponentChildren; labelledBy?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  const id = `dialog-${props.title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog ref={ref} aria-labelledby={id} onClose={props.onClose} onCancel={props.onClose}>
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** An error as one announced line, with the request id that finds it in the gateway's logs. */
export function ErrorNote(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  const text = e instanceof ApiError ? `${e.message}${e.status === 403 ? ' (refused: this credential may not do that)' : ''}` : String(e);
  return (
    <p class="error" role="alert">
      {text}
      {e instanceof ApiError && e.requestId ? <span class="muted"> · request {e.requestId}</span> : null}
    </p>
  );
}

/** The tenants root may pick from (with "every tenant" when `any`); a tenant admin's own tenant, fixed. */
export function TenantPicker(props: { session: Session; value: string; onChange: (tenant: string) => void; any?: boolean; id?: string }) {
  const [tenants, setTenants] = useState<string[]>([]);
  useEffect(() => {
    if (!props.session.root) return;
    admin<{ tenants: Array<{ name: string }> }>('GET', '/tenants').then((r) => setTenants(r.tenants.map((t) => t.name)), () => setTenants([]));
  }, [props.session.root]);
  const id = props.id ?? 'tenant';
  if (!props.session.root) {
    return (
      <div class="field">
        <label for={id}>Tenant</label>
        <input id={id} value={props.session.tenant} readOnly />
      </div>
    );
  }
  return (
    <div class="field">
      <label for={id}>Tenant</label>
      <select id={id} value={props.value} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
        {props.any && <option value="">every tenant</option>}
        {!props.any && props.value === '' && <option value="">choose a tenant</option>}
        {tenants.map((t) => <option key={t} value={t}>{t}</option>)}
      </select>
    </div>
  );
}

/** A finding's severity as a coloured word (the word carries the meaning; colour only repeats it). */
export function Severity(props: { level: string }) {
  return <span class={`badge severity-${props.level}`}>{props.level}</span>;
}

/** A command with a button that copies it. */
export function Command(props: { text: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () => navigator.clipboard?.writeText(props.text).then(() => {
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  }, () => undefined);
  return (
    <span class="command">
      <code>{props.text}</code>
      <button type="button" class="link" onClick={copy} aria-label={`Copy command: ${props.text}`}>{copied ? 'copied' : 'copy'}</button>
    </span>
  );
}
