import { useEffect, useMemo, useState } from 'preact/hooks';
import { type Activity, type ActivityItem, getJson } from '../api.ts';
import { ActivityList } from '../components/activity.tsx';
import { AuditsCard } from '../components/audits.tsx';
import { Card, Empty, ErrorNote, Loading, Segmented } from '../components/ui.tsx';
import { useLive, useResource } from '../hooks.ts';

type Filter = 'all' | 'jobs' | 'batches' | 'bonds' | 'slashes' | 'audits' | 'payments' | 'models';

const FILTERS: { value: Filter; label: string; kinds: string[] }[] = [
  { value: 'all', label: 'All', kinds: [] },
  { value: 'jobs', label: 'Jobs', kinds: ['job'] },
  { value: 'batches', label: 'Batches', kinds: ['batch'] },
  { value: 'bonds', label: 'Bonds', kinds: ['bond', 'unbond'] },
  { value: 'slashes', label: 'Slashes', kinds: ['slash'] },
  { value: 'audits', label: 'Audits', kinds: ['audit', 'attestation'] },
  { value: 'payments', label: 'Payments', kinds: ['deposit', 'earnings'] },
  { value: 'models', label: 'Models', kinds: ['model'] },
];

const DEFAULT_KINDS = [
  'job',
  'batch',
  'bond',
  'unbond',
  'slash',
  'audit',
  'attestation',
  'deposit',
  'earnings',
  'model',
];

function byTimeDesc(a: ActivityItem, b: ActivityItem) {
  return a.time < b.time ? 1 : a.time > b.time ? -1 : (b.block ?? 0) - (a.block ?? 0);
}

export function ActivityPage() {
  const [filter, setFilter] = useState<Filter>('all');
  const f = FILTERS.find((x) => x.value === filter)!;
  const query = f.kinds.length ? `&kind=${f.kinds.join(',')}` : '';
  const first = useResource<Activity>(`/activity?limit=50${query}`, 60_000);
  const live = useLive();
  const [older, setOlder] = useState<ActivityItem[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<string>();

  // A new filter starts a new list.
  useEffect(() => {
    setOlder([]);
    setNext(null);
  }, [filter]);
  useEffect(() => {
    if (first.data && older.length === 0) setNext(first.data.next_before);
  }, [first.data, older.length]);

  const kinds = f.kinds.length ? f.kinds : DEFAULT_KINDS;
  const items = useMemo(() => {
    const seen = new Map<string, ActivityItem>();
    for (const i of [...live.items, ...(first.data?.data ?? []), ...older]) {
      if (!kinds.includes(i.kind)) continue;
      if (!seen.has(i.id)) seen.set(i.id, i);
    }
    return [...seen.values()].sort(byTimeDesc);
  }, [live.items, first.data, older, kinds]);

  async function loadMore() {
    if (next === null) return;
    setLoadingMore(true);
    try {
      const page = await getJson<Activity>(`/activity?limit=50&before=${next}${query}`);
      setOlder((o) => [...o, ...page.data]);
      setNext(page.next_before);
      setMoreError(undefined);
    } catch (e) {
      setMoreError((e as Error).message);
    } finally {
      setLoadingMore(false);
    }
  }

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Activity</h1>
          <p class="muted">
            Everything happening on the grid as it happens: jobs completing, batches settling on chain, bonds,
            unbonds, slashes and (soon) audits. New items arrive without reloading.
          </p>
        </div>
      </div>
      <div class="section-head">
        <Segmented label="Filter" value={filter} options={FILTERS} onChange={setFilter} />
      </div>
      <ErrorNote error={first.error} />
      <Card testid="activity">
        {!first.data ? (
          <Loading rows={6} />
        ) : items.length === 0 ? (
          filter === 'audits' ? (
            <Empty title="No audits yet">
              Validators audit a random sample of settled jobs and attest on chain. Attestations and their
              verdicts will appear here once the audit contracts are deployed.
            </Empty>
          ) : filter === 'slashes' ? (
            <Empty title="No slashes">
              Nobody has been slashed. Bad results and false attestations would show here.
            </Empty>
          ) : (
            <Empty title="Nothing yet">Activity shows up here as soon as it happens.</Empty>
          )
        ) : (
          <ActivityList items={items} />
        )}
        {next !== null && items.length > 0 && (
          <div class="load-more">
            <button type="button" class="btn" onClick={loadMore} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : 'Load older'}
            </button>
            <ErrorNote error={moreError} />
          </div>
        )}
      </Card>
      <AuditsCard />
    </div>
  );
}
