import type { ComponentChildren } from 'preact';
import { render } from 'preact';
import type { IndexerStatus } from './api.ts';
import { formatNumber, formatRelative } from './format.ts';
import { LiveContext, type Route, useLive, useLiveStream, useResource, useRoute, useTheme } from './hooks.ts';
import { ActivityPage } from './pages/activity.tsx';
import { ConfidentialPage } from './pages/confidential.tsx';
import { NetworkPage } from './pages/network.tsx';
import { OperatorPage } from './pages/operator.tsx';
import { ValidatorsPage } from './pages/validators.tsx';
import { WorkersPage } from './pages/workers.tsx';
import './styles.css';

const TABS: { page: Route['page']; href: string; label: string }[] = [
  { page: 'network', href: '#/', label: 'Network' },
  { page: 'workers', href: '#/workers', label: 'Workers' },
  { page: 'validators', href: '#/validators', label: 'Validators' },
  { page: 'activity', href: '#/activity', label: 'Activity' },
  { page: 'confidential', href: '#/confidential', label: 'Confidential' },
  { page: 'operator', href: '#/operator', label: 'Operator' },
];

function LiveBadge() {
  const { status } = useLive();
  const text = status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting' : 'Offline';
  return (
    <span class={`live live-${status}`} data-testid="live-status" title="Live updates (server-sent events)">
      <span class="live-dot" />
      {text}
    </span>
  );
}

function ThemeToggle() {
  const [theme, toggle] = useTheme();
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="icon-btn"
      onClick={toggle}
      aria-label={`Switch to the ${next} theme`}
      title={`Switch to the ${next} theme`}
      data-testid="theme-toggle"
    >
      {theme === 'dark' ? (
        <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
          <circle cx="12" cy="12" r="4.5" fill="currentColor" />
          <g stroke="currentColor" stroke-width="2" stroke-linecap="round">
            <path d="M12 2v2M12 20v2M2 12h2M20 12h2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" />
          </g>
        </svg>
      ) : (
        <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
          <path d="M20 14.5A8.5 8.5 0 0 1 9.5 4a8.5 8.5 0 1 0 10.5 10.5z" fill="currentColor" />
        </svg>
      )}
    </button>
  );
}

function Footer() {
  const { data } = useResource<{ indexer: IndexerStatus }>('/status', 10_000);
  const s = data?.indexer;
  return (
    <footer class="footer">
      <span>
        {s?.indexed_block !== null && s?.indexed_block !== undefined
          ? `Indexed to block ${formatNumber(s.indexed_block, 0)}${s.lag_blocks ? ` (${s.lag_blocks} behind)` : ''}`
          : 'Indexer starting…'}
        {s?.last_sync_at ? ` · synced ${formatRelative(s.last_sync_at)}` : ''}
        {s?.last_error ? ` · indexer error: ${s.last_error}` : ''}
      </span>
      <span>
        Public JSON API: <a href="/v1/network">/v1/network</a>
      </span>
    </footer>
  );
}

function Layout({ route, children }: { route: Route; children: ComponentChildren }) {
  return (
    <div class="app">
      <header class="topbar">
        <div class="topbar-inner">
          <a class="brand" href="#/">
            <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
              <rect width="32" height="32" rx="8" fill="var(--accent)" />
              <path d="M18 4 8 18h7l-2 10 11-15h-7z" fill="var(--accent-ink)" />
            </svg>
            <span>AI Power Grid</span>
          </a>
          <nav class="tabs" aria-label="Pages">
            {TABS.map((t) => (
              <a key={t.page} href={t.href} aria-current={route.page === t.page ? 'page' : undefined}>
                {t.label}
              </a>
            ))}
          </nav>
          <div class="topbar-right">
            <LiveBadge />
            <ThemeToggle />
          </div>
        </div>
      </header>
      <main class="container">{children}</main>
      <Footer />
    </div>
  );
}

function App() {
  const route = useRoute();
  const live = useLiveStream();
  let page: ComponentChildren;
  switch (route.page) {
    case 'workers':
      page = <WorkersPage />;
      break;
    case 'validators':
      page = <ValidatorsPage />;
      break;
    case 'activity':
      page = <ActivityPage />;
      break;
    case 'confidential':
      page = <ConfidentialPage />;
      break;
    case 'operator':
      page = <OperatorPage address={route.address} />;
      break;
    default:
      page = <NetworkPage />;
  }
  return (
    <LiveContext.Provider value={live}>
      <Layout route={route}>{page}</Layout>
    </LiveContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
