import type { Hono } from 'hono';
import type { Env, RouteDeps } from '../env.ts';

/** The database's figures of a `/metrics` scrape are read at most this often (a scrape every 15 s is usual). */
const COLLECT_EVERY_MS = 5_000;

/**
 * Operations: `GET /metrics` (Prometheus) and `GET /healthz`.
 */
export function registerOperationRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const { common, storage, chain, hub, jobs } = deps;
  const { metrics, shutdown } = common;

  // What the database says, read at most once every COLLECT_EVERY_MS however often `/metrics` is
  // asked (it takes no key): a flood of scrapes must not turn into a flood of counts, each holding
  // embedded PGlite (every request with it) for as long as it runs.
  let collected: { at: number; done: Promise<void> } | undefined;
  const collect = async () => {
    const byStatus = await storage.jobs.countByStatus().catch(() => ({}) as Record<string, number>);
    for (const status of ['queued', 'running', 'succeeded', 'failed'])
      metrics.jobsByStatus.set({ status }, byStatus[status] ?? 0);
    const batches = await storage.db
      .query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM batches GROUP BY status')
      .catch(() => []);
    for (const status of ['pending', 'settled', 'failed']) {
      metrics.batchesByStatus.set({ status }, Number(batches.find((b) => b.status === status)?.n ?? 0));
    }
    const waiting = await storage.receipts.countWaiting(chain.gateway).catch(() => undefined);
    metrics.unsettledReceipts.set(undefined, waiting?.unsettled ?? 0);
  };
  metrics.addCollector(() => {
    metrics.workersOnline.set(undefined, hub.workers().length);
    if (!collected || Date.now() - collected.at >= COLLECT_EVERY_MS)
      collected = { at: Date.now(), done: collect() };
    return collected.done;
  });

  app.get('/metrics', async (c) =>
    c.text(await metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  );

  app.get('/healthz', async (c) => {
    let db = 'ok';
    try {
      await storage.db.query('SELECT 1');
    } catch {
      db = 'down';
    }
    const healthy = db === 'ok' && !shutdown.isShuttingDown();
    return c.json(
      {
        status: healthy ? 'ok' : shutdown.isShuttingDown() ? 'shutting_down' : 'degraded',
        gateway: chain.gateway,
        chain_id: chain.chainId,
        grid: chain.grid,
        database: { kind: storage.db.kind, status: db },
        workers_online: hub.workers().length,
        jobs_in_flight: jobs.inFlight(),
      },
      healthy ? 200 : 503,
    );
  });
}
