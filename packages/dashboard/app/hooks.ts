import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { type ActivityItem, ApiError, getJson, NETWORK_API, STREAM_URL } from './api.ts';

// ── routing (hash based: the gateway serves one index.html at `/`) ──────────────────────────

export type Route =
  | { page: 'network' }
  | { page: 'workers' }
  | { page: 'validators' }
  | { page: 'activity' }
  | { page: 'confidential' }
  | { page: 'operator'; address: string | null };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  switch (parts[0]) {
    case 'workers':
      return { page: 'workers' };
    case 'validators':
      return { page: 'validators' };
    case 'activity':
      return { page: 'activity' };
    case 'confidential':
      return { page: 'confidential' };
    case 'operator':
      return { page: 'operator', address: parts[1] ?? null };
    default:
      return { page: 'network' };
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => {
      setRoute(parseRoute(location.hash));
      window.scrollTo({ top: 0 });
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

// ── theme ───────────────────────────────────────────────────────────────────────────────────

export type Theme = 'light' | 'dark';
const THEME_KEY = 'aipg-theme';

function systemTheme(): Theme {
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** The theme: a saved choice, else the system's (followed live until the user picks one). */
export function useTheme(): [Theme, () => void] {
  const [saved, setSaved] = useState<Theme | null>(() => {
    try {
      const t = localStorage.getItem(THEME_KEY);
      return t === 'light' || t === 'dark' ? t : null;
    } catch {
      return null;
    }
  });
  const [system, setSystem] = useState<Theme>(systemTheme);
  useEffect(() => {
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const on = () => setSystem(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const theme = saved ?? system;
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const toggle = () => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next; // now, not after the next render
    setSaved(next);
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      // private mode: the choice lasts for this page only
    }
  };
  return [theme, toggle];
}

// ── clock ───────────────────────────────────────────────────────────────────────────────────

/** The current time, re-rendering every `ms` (relative times, countdowns). */
export function useNow(ms = 1_000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

// ── live stream ─────────────────────────────────────────────────────────────────────────────

export type LiveState = {
  status: 'connecting' | 'live' | 'offline';
  /** Activity received over the stream since the page loaded, newest first. */
  items: ActivityItem[];
  /** Bumped (debounced) after new activity: data hooks refetch when it changes. */
  version: number;
  /** Items at or after this block were replaced by a reorg (drop them from pages' lists). */
  reorgBlock: number | null;
};

export const LiveContext = createContext<LiveState>({
  status: 'connecting',
  items: [],
  version: 0,
  reorgBlock: null,
});

export function useLive(): LiveState {
  return useContext(LiveContext);
}

const MAX_LIVE_ITEMS = 300;

/** One EventSource for the whole app (the browser reconnects on its own after `retry`). */
export function useLiveStream(): LiveState {
  const [state, setState] = useState<LiveState>({
    status: 'connecting',
    items: [],
    version: 0,
    reorgBlock: null,
  });
  const bump = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    const es = new EventSource(STREAM_URL);
    const scheduleBump = () => {
      clearTimeout(bump.current);
      bump.current = setTimeout(() => setState((s) => ({ ...s, version: s.version + 1 })), 250);
    };
    es.addEventListener('hello', () => setState((s) => ({ ...s, status: 'live' })));
    es.addEventListener('status', () =>
      setState((s) => (s.status === 'live' ? s : { ...s, status: 'live' })),
    );
    es.addEventListener('activity', (e) => {
      const item = JSON.parse((e as MessageEvent<string>).data) as ActivityItem;
      setState((s) => ({
        ...s,
        status: 'live',
        items: [item, ...s.items.filter((x) => x.id !== item.id)].slice(0, MAX_LIVE_ITEMS),
      }));
      scheduleBump();
    });
    es.addEventListener('reorg', (e) => {
      const { fork_block } = JSON.parse((e as MessageEvent<string>).data) as { fork_block: number };
      setState((s) => ({
        ...s,
        reorgBlock: fork_block,
        items: s.items.filter((x) => x.block === null || x.block < fork_block),
      }));
      scheduleBump();
    });
    es.onerror = () => setState((s) => ({ ...s, status: es.readyState === 2 ? 'offline' : 'connecting' }));
    es.onopen = () => setState((s) => ({ ...s, status: 'live' }));
    return () => {
      clearTimeout(bump.current);
      es.close();
    };
  }, []);
  return state;
}

// ── data ────────────────────────────────────────────────────────────────────────────────────

export type Resource<T> = {
  data: T | undefined;
  error: string | undefined;
  /** The HTTP status of the failed request behind `error` (undefined: no answer, or none failed). */
  status?: number | undefined;
  loading: boolean;
};

/**
 * GETs `path` (relative to `root`, default /v1/network), again whenever live activity arrives
 * (unless `live` is false: an endpoint with a tight rate limit) and every `refreshMs`; keeps showing
 * the last answer while a refresh runs. `null` skips the request.
 */
export function useResource<T>(
  path: string | null,
  refreshMs = 15_000,
  { root = NETWORK_API, live = true }: { root?: string; live?: boolean } = {},
): Resource<T> {
  const { version } = useLive();
  const trigger = live ? version : 0;
  const [state, setState] = useState<Resource<T>>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const current = useRef(path);
  useEffect(() => {
    if (current.current !== path) {
      current.current = path;
      setState({ data: undefined, error: undefined, loading: true });
    }
  }, [path]);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), refreshMs);
    return () => clearInterval(t);
  }, [refreshMs]);
  // `trigger` (live activity) and `tick` (timer) are refetch triggers.
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    getJson<T>(path, controller.signal, root).then(
      (data) => setState({ data, error: undefined, loading: false }),
      (error: Error) => {
        if (controller.signal.aborted) return;
        const status = error instanceof ApiError ? error.status : undefined;
        setState((s) => ({ data: s.data, error: error.message, status, loading: false }));
      },
    );
    return () => controller.abort();
  }, [path, root, trigger, tick]);
  return state;
}
