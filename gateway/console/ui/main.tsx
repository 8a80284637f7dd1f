/**
 * The Anvil web console: sign-in, then four pages (denials, credentials, audit, relationships) behind hash routes,
 * each reading the admin API through the console's session. Built with Preact and bundled at build time by esbuild
 * (bin/build-console.js); nothing is loaded from anywhere but the gateway.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, SIGNED_OUT, useCsrf, type Session } from './api.ts';
import { AuditPage } from './pages/audit.tsx';
import { CredentialsPage } from './pages/credentials.tsx';
import { DenialsPage } from './pages/denials.tsx';
import { RelationshipsPage } from './pages/relationships.tsx';
import { SignIn } from './sign-in.tsx';

const PAGES = [
  { route: 'denials', title: 'Denials', Page: DenialsPage },
  { route: 'credentials', title: 'Credentials', Page: CredentialsPage },
  { route: 'audit', title: 'Audit', Page: AuditPage },
  { route: 'relationships', title: 'Relationships', Page: RelationshipsPage },
] as const;

/** The page the location's hash names (`#/credentials`), the first by default. */
function routeOf(hash: string): (typeof PAGES)[number] {
  const name = hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.find((p) => p.route === name) ?? PAGES[0];
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [page, setPage] = useState(() => routeOf(location.hash));

  useEffect(() => {
    api<Session>('GET', '/session').then(
      (s) => {
        useCsrf(s.csrf);
        setSession(s);
      },
      () => setSession(null),
    );
    const out = () => setSession(null);
    const moved = () => setPage(routeOf(location.hash));
    window.addEventListener(SIGNED_OUT, out);
    window.addEventListener('hashchange', moved);
    return () => {
      window.removeEventListener(SIGNED_OUT, out);
      window.removeEventListener('hashchange', moved);
    };
  }, []);

  useEffect(() => {
    document.title = session ? `${page.title} · Anvil console` : 'Sign in · Anvil console';
    // A new page is announced by moving focus to its heading (keyboard and screen-reader users land there).
    if (session) document.getElementById('page-title')?.focus();
  }, [page, session]);

  if (session === undefined) return <p class="loading" role="status">Loading…</p>;
  if (session === null) {
    return (
      <SignIn
        onSignedIn={(s) => {
          useCsrf(s.csrf);
          setSession(s);
        }}
      />
    );
  }
  const signOut = async () => {
    await api('DELETE', '/session').catch(() => undefined);
    setSession(null);
  };
  const { Page } = page;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('page-title')?.focus(); }}>Skip to content</a>
      <header class="top">
        <span class="brand">Anvil console</span>
        <nav aria-label="Console pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.route}>
                <a href={`#/${p.route}`} aria-current={p.route === page.route ? 'page' : undefined}>{p.title}</a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={session.subject}>
            {session.root ? 'root' : `tenant ${session.tenant}`} · <code>{session.accessKeyId}</code>
          </span>
          <button type="button" class="secondary" onClick={signOut}>Sign out</button>
        </div>
      </header>
      <main id="main">
        <h1 id="page-title" tabIndex={-1}>{page.title}</h1>
        <Page session={session} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
