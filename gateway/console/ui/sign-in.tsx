/** The sign-in form: an access key and its secret, exchanged for a session cookie the page never sees. */
import { useState } from 'preact/hooks';
import { api, ApiError, type Session } from './api.ts';

/** The sign-in page; calls onSignedIn with the session once the gateway accepted the pair. */
export function SignIn(props: { onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError('');
    try {
      props.onSignedIn(await api<Session>('POST', '/session', { accessKeyId: String(form.get('accessKeyId')).trim(), secretKey: String(form.get('secretKey')) }));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in" id="main">
      <h1>Anvil console</h1>
      <p>Sign in with an access key and its secret. The console can do exactly what the admin API lets that credential do.</p>
      <form onSubmit={submit} aria-describedby={error ? 'sign-in-error' : undefined}>
        <label for="accessKeyId">Access key ID</label>
        <input id="accessKeyId" name="accessKeyId" autocomplete="username" spellcheck={false} required autoFocus />
        <label for="secretKey">Secret access key</label>
        <input id="secretKey" name="secretKey" type="password" autocomplete="current-password" required />
        {error && <p id="sign-in-error" class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
