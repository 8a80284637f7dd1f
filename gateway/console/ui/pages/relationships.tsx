/**
 * Relationships: a tenant's schema (read-only unless the credential may write it: every family on every bucket, as
 * the admin API requires; a deploy shows what it changes first), a check / explain form that shows the path that
 * granted or the reason it did not, and the tenant's watch stream (Server-Sent Events through the session).
 */
import { useEffect, useState } from 'preact/hooks';
import { admin, holdsTenantWide, query, shortTime, type Session } from '../api.ts';
import { Dialog, ErrorNote, TenantPicker } from '../components.tsx';

interface Schema {
  revision: string;
  schema: string;
  caveats: Array<{ name: string; hash: string }>;
}

interface CheckAnswer {
  result: 'allowed' | 'denied' | 'conditional';
  reason: string;
  missing?: string[];
  path?: string[];
}

interface WatchEvent {
  revision: string;
  kind: string;
  tuple?: { resource: { type: string; id: string }; relation: string; subject: { type: string; id: string; relation?: string } };
  caveat?: { name: string; hash: string | null };
  at: string;
}

const KINDS = ['tuple.create', 'tuple.touch', 'tuple.delete', 'schema.write', 'caveat.write'];
const MAX_EVENTS = 500;

const tupleText = (t: NonNullable<WatchEvent['tuple']>) =>
  `${t.resource.type}:${t.resource.id}#${t.relation}@${t.subject.type}:${t.subject.id}${t.subject.relation ? `#${t.subject.relation}` : ''}`;

function SchemaPanel(props: { tenant: string; writable: boolean }) {
  const [schema, setSchema] = useState<Schema>();
  const [draft, setDraft] = useState<string>();
  const [reason, setReason] = useState('');
  const [diff, setDiff] = useState<{ permissions: Array<{ permission: string; change: string }>; caveats: Array<{ name: string; change: string }> }>();
  const [error, setError] = useState<unknown>();
  const load = () => {
    setSchema(undefined);
    setError(undefined);
    admin<Schema>('GET', `/schema${query({ tenant: props.tenant })}`).then(setSchema, setError);
  };
  useEffect(load, [props.tenant]);
  const review = async () => {
    try {
      setDiff(await admin('POST', '/schema/diff', { tenant: props.tenant, schema: draft }));
    } catch (e) {
      setError(e);
    }
  };
  const deploy = async () => {
    setDiff(undefined);
    try {
      await admin('PUT', '/schema', { tenant: props.tenant, schema: draft, reason });
      setDraft(undefined);
      load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="schema-title">
      <h2 id="schema-title">Schema {schema && <span class="muted">revision {schema.revision}</span>}</h2>
      <ErrorNote error={error} />
      {draft === undefined ? (
        <>
          <pre class="schema" tabIndex={0} role="region" aria-label="Deployed schema">{schema?.schema ?? ''}</pre>
          {schema && schema.caveats.length > 0 && <p class="muted">Caveats: {schema.caveats.map((c) => `${c.name} (${c.hash})`).join(', ')}</p>}
          {props.writable && schema && <button type="button" class="secondary" onClick={() => setDraft(schema.schema)}>Edit schema</button>}
        </>
      ) : (
        <form onSubmit={(e) => { e.preventDefault(); void review(); }}>
          <label for="schema-draft">Schema</label>
          <textarea id="schema-draft" rows={16} value={draft} onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)} spellcheck={false} />
          <label for="schema-reason">Reason (recorded in the audit trail)</label>
          <input id="schema-reason" value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} required />
          <div class="buttons">
            <button type="button" class="secondary" onClick={() => setDraft(undefined)}>Cancel</button>
            <button type="submit">Review changes…</button>
          </div>
        </form>
      )}
      <Dialog open={diff !== undefined} title="Deploy this schema?" onClose={() => setDiff(undefined)}>
        <ul>
          {diff?.permissions.filter((p) => p.change !== 'unchanged').map((p) => <li key={p.permission}><code>{p.permission}</code>: {p.change}</li>)}
          {diff?.caveats.map((c) => <li key={c.name}>caveat <code>{c.name}</code>: {c.change}</li>)}
          {diff && diff.permissions.every((p) => p.change === 'unchanged') && diff.caveats.length === 0 && <li>No permission changes.</li>}
        </ul>
        <div class="buttons">
          <button type="button" class="secondary" onClick={() => setDiff(undefined)} autoFocus>Cancel</button>
          <button type="button" onClick={() => void deploy()}>Deploy</button>
        </div>
      </Dialog>
    </section>
  );
}

function CheckPanel(props: { tenant: string }) {
  const [answer, setAnswer] = useState<CheckAnswer & { resource: string; permission: string; subject: string }>();
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setError(undefined);
    setAnswer(undefined);
    try {
      const text = String(form.get('context') ?? '').trim();
      let context: unknown;
      if (text !== '') {
        try {
          context = JSON.parse(text);
        } catch {
          throw new Error('the context is not valid JSON');
        }
      }
      setAnswer(await admin('POST', '/check', {
        tenant: props.tenant, resource: String(form.get('resource')), permission: String(form.get('permission')), subject: String(form.get('subject')), explain: true,
        ...(context === undefined ? {} : { context }),
      }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="check-title">
      <h2 id="check-title">Check and explain</h2>
      <form class="check-form" onSubmit={submit}>
        <div class="field"><label for="c-resource">Resource</label><input id="c-resource" name="resource" placeholder="object:photos/2024/a.jpg" required spellcheck={false} /></div>
        <div class="field"><label for="c-permission">Permission</label><input id="c-permission" name="permission" placeholder="read" required spellcheck={false} /></div>
        <div class="field"><label for="c-subject">Subject</label><input id="c-subject" name="subject" placeholder="user:amy" required spellcheck={false} /></div>
        <div class="field wide"><label for="c-context">Context (JSON, optional)</label><input id="c-context" name="context" placeholder='{"client_ip": "10.0.0.1"}' spellcheck={false} /></div>
        <button type="submit">Check</button>
      </form>
      <ErrorNote error={error} />
      {answer && (
        <div class={`answer answer-${answer.result}`} role="status">
          <p><strong>{answer.result}</strong>: <code>{answer.subject}</code> {answer.result === 'allowed' ? 'has' : answer.result === 'denied' ? 'does not have' : 'may have'} <code>{answer.permission}</code> on <code>{answer.resource}</code>.</p>
          {answer.path && answer.path.length > 0 && (
            <>
              <p>The path that {answer.result === 'allowed' ? 'granted' : 'would grant'} it:</p>
              <ol class="path">{answer.path.map((step, i) => <li key={i}><code>{step}</code></li>)}</ol>
            </>
          )}
          {answer.result !== 'allowed' && <p>Why: {answer.reason}</p>}
          {answer.missing && answer.missing.length > 0 && <p>Missing context: {answer.missing.join(', ')}</p>}
        </div>
      )}
    </section>
  );
}

function WatchPanel(props: { tenant: string }) {
  const [on, setOn] = useState(false);
  const [events, setEvents] = useState<WatchEvent[]>([]);
  const [state, setState] = useState('');
  useEffect(() => {
    if (!on) return;
    const es = new EventSource(`api/v1/watch${query({ tenant: props.tenant })}`);
    setState('connecting…');
    es.onopen = () => setState('following');
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…');
    const onEvent = (e: MessageEvent) => setEvents((old) => [JSON.parse(e.data) as WatchEvent, ...old].slice(0, MAX_EVENTS));
    for (const kind of KINDS) es.addEventListener(kind, onEvent as EventListener);
    return () => {
      es.close();
      setState('stopped');
    };
  }, [on, props.tenant]);
  return (
    <section aria-labelledby="watch-title">
      <h2 id="watch-title">Watch</h2>
      <p>
        <button type="button" class="secondary" aria-pressed={on} onClick={() => setOn(!on)}>{on ? 'Stop watching' : 'Watch changes'}</button>
        {' '}<span class="muted" role="status">{state}</span>
      </p>
      <ol class="events" aria-live="polite" aria-label="Changes, newest first">
        {events.map((e, i) => (
          <li key={`${e.revision}-${i}`}>
            <span class="muted">{shortTime(e.at)}</span> <span class="kind">{e.kind}</span>{' '}
            <code>{e.tuple ? tupleText(e.tuple) : e.caveat ? `${e.caveat.name} ${e.caveat.hash ?? '(removed)'}` : ''}</code>
          </li>
        ))}
      </ol>
    </section>
  );
}

/** The relationships page: a tenant's schema, check and explain, and the watch stream. */
export function RelationshipsPage(props: { session: Session }) {
  const [tenant, setTenant] = useState(props.session.root ? '' : props.session.tenant);
  return (
    <>
      <div class="filters">
        <TenantPicker session={props.session} value={tenant} onChange={setTenant} id="relationships-tenant" />
      </div>
      {tenant === '' ? <p class="muted">Choose a tenant.</p> : (
        <div class="panels">
          <SchemaPanel tenant={tenant} writable={holdsTenantWide(props.session)} />
          <CheckPanel tenant={tenant} />
          <WatchPanel tenant={tenant} />
        </div>
      )}
    </>
  );
}
