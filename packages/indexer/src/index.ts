import type { ReadClient } from '@aipg/chain';
import { type Address, getAddress } from 'viem';
import { createFeed, defaultFeedOptions, type FeedOptions } from './feed.ts';
import {
  createIndexer,
  defaultIndexerOptions,
  type IndexerOptions,
  type IndexerProgress,
} from './indexer.ts';
import { migrateNetwork } from './migrations.ts';
import type { QueryDeps } from './queries.ts';
import { createNetworkRoutes, type PayerAuthenticator } from './routes.ts';
import type { Leases, Sql } from './sql.ts';
import { createDashboardRoutes } from './static.ts';
import { type NetworkContext, type NetworkHub, silentContext } from './types.ts';

export type NetworkOptions = {
  indexer: IndexerOptions;
  feed: FeedOptions;
  /** How long an identical API read is reused (ms). */
  cacheMs: number;
  /** The built dashboard (default packages/dashboard/dist). */
  dashboardDir: string | undefined;
};

export type CreateNetworkParameters = {
  /**
   * The gateway's `Common`: logger, metrics, and shutdown (its signal closes the live streams as soon
   * as a shutdown starts, so they never hold the HTTP drain). Silent defaults when left out.
   */
  common?: (Partial<NetworkContext> & { shutdown?: { signal: AbortSignal } | undefined }) | undefined;
  /** The gateway's database (its migrations already applied: the feature reads `jobs` and `receipts`). */
  db: Sql;
  /** A chain client for the indexer's loop only; requests never use it. */
  publicClient: ReadClient;
  deployment: {
    grid: Address;
    chainId: number;
    /** Where indexing starts; found with a binary search over `eth_getCode` when unknown. */
    deployBlock?: number | undefined;
  };
  /** Connected workers (the gateway's hub): workers online, models, GPUs, load. */
  hub?: NetworkHub | undefined;
  /** Replicas on one PostgreSQL: only the lease holder indexes (the gateway's `storage.leases`). */
  leases?: Leases | undefined;
  /**
   * False: this process does not follow the chain; another one does into the same database (the
   * standalone indexer, `aipg indexer start`), and this one serves what it stored. Default true.
   */
  follow?: boolean | undefined;
  /**
   * `Authorization` header → payer of its live API key (401 otherwise), for a payer's own job activity.
   * Default: no key is accepted (the gateway passes its `api_keys` check).
   */
  authenticate?: PayerAuthenticator | undefined;
  options?: {
    indexer?: Partial<IndexerOptions> | undefined;
    feed?: Partial<FeedOptions> | undefined;
    cacheMs?: number | undefined;
    dashboardDir?: string | undefined;
  };
};

export type Network = ReturnType<typeof createNetwork>;

/**
 * The network feature: the Grid event indexer, the statistics over its tables and the gateway's job
 * records, the public JSON API (`router`, mounted at `/v1/network`), the live activity stream, and
 * the dashboard's static files (`dashboard`, mounted at `/`).
 *
 *   const network = createNetwork({ common, db: storage.db, publicClient: chain.publicClient,
 *     deployment: { grid, chainId, deployBlock }, hub, leases: storage.leases });
 *   await network.start();
 *   shutdown.add('network', () => network.stop());
 *   app.route('/v1/network', network.router);
 *   app.route('/', network.dashboard);
 */
export function createNetwork(p: CreateNetworkParameters) {
  const silent = silentContext();
  const ctx: NetworkContext = {
    logger: p.common?.logger ?? silent.logger,
    metrics: p.common?.metrics ?? silent.metrics,
  };
  const options: NetworkOptions = {
    indexer: { ...defaultIndexerOptions, ...p.options?.indexer },
    feed: { ...defaultFeedOptions, ...p.options?.feed },
    cacheMs: p.options?.cacheMs ?? 750,
    dashboardDir: p.options?.dashboardDir,
  };
  let feed: ReturnType<typeof createFeed> | undefined;
  let generation = 0;
  const listeners = new Set<(p: IndexerProgress) => void>();
  const indexer = createIndexer({
    ctx,
    db: p.db,
    client: p.publicClient,
    grid: getAddress(p.deployment.grid),
    chainId: p.deployment.chainId,
    deployBlock: p.deployment.deployBlock,
    leases: p.leases,
    follow: p.follow ?? true,
    options: options.indexer,
    onProgress: (progress) => {
      if (progress.type === 'reorg' || progress.events > 0) generation += 1;
      feed?.notify(progress);
      for (const listener of listeners) {
        try {
          listener(progress);
        } catch (error) {
          ctx.logger.warn({ msg: 'network indexer: a progress listener failed', error });
        }
      }
    },
  });
  const deps: QueryDeps = {
    db: p.db,
    hub: p.hub,
    status: () => indexer.status(),
    generation: () => generation,
  };
  feed = createFeed({
    ctx,
    db: p.db,
    hub: p.hub,
    status: deps.status,
    options: options.feed,
    onActivity: () => {
      generation += 1;
    },
  });
  p.common?.shutdown?.signal.addEventListener('abort', () => void feed?.stop(), { once: true });
  const router = createNetworkRoutes({
    deps,
    feed,
    cacheMs: options.cacheMs,
    logger: ctx.logger,
    authenticate: p.authenticate,
  });
  const dashboard = createDashboardRoutes({ dir: options.dashboardDir });
  let started = false;

  return {
    /** Hono app for `/v1/network`. */
    router,
    /** Hono app for `/` (the built dashboard). */
    dashboard,
    indexer,
    feed,
    /** The reads behind the API, for in-process use (the CLI's `status`, tests). */
    deps,
    /**
     * Calls `listener` after each range the indexer stored and each rewind (committed: its events are in
     * `network_events`), in this process; with `follow: false`, as it sees another process's cursor move.
     * In-process consumers of the Grid's events (the gateway's reputation) read them from there instead of
     * following the chain. Returns the unsubscribe.
     */
    onProgress(listener: (p: IndexerProgress) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /**
     * Applies the feature's migrations, then starts the indexer loop (it catches up in the background; with
     * `follow: false` it only reads the cursor another process moves).
     */
    async start(): Promise<void> {
      if (started) return;
      started = true;
      const applied = await migrateNetwork(p.db);
      if (applied.length) ctx.logger.info({ msg: 'network tables migrated', migrations_applied: applied });
      indexer.start();
    },
    /** Applies the migrations without starting the loop (tests drive `indexer.syncNow()`). */
    migrate: () => migrateNetwork(p.db),
    /** Stops the live streams and the indexer (a range in progress finishes first). */
    async stop(): Promise<void> {
      await feed?.stop();
      await indexer.stop();
    },
  };
}

export type {
  NetworkActivity,
  NetworkAudits,
  NetworkGateways,
  NetworkGovernance,
  NetworkIndexerStatus,
  NetworkModel,
  NetworkModels,
  NetworkOperator,
  NetworkStatus,
  NetworkSummary,
  NetworkTimeseries,
  NetworkValidator,
  NetworkValidators,
  NetworkWorker,
  NetworkWorkers,
} from './api.ts';
export { NetworkError, type NetworkErrorCode, networkErrorCodes } from './errors.ts';
export type { EventKind, IndexedEvent } from './events.ts';
export { defaultFeedOptions, type FeedOptions } from './feed.ts';
export {
  type CatchUpParameters,
  createGridFollower,
  defaultGridFollowerOptions,
  type GridBlock,
  type GridFollower,
  type GridFollowerOptions,
  type GridRange,
  type GridSink,
} from './follower.ts';
export type { PendingChangeItem } from './governance.ts';
export {
  defaultIndexerOptions,
  type IndexerOptions,
  type IndexerProgress,
  type IndexerStatus,
} from './indexer.ts';
export { migrateNetwork } from './migrations.ts';
export type { ActivityItem, AuditItem, AuditSummaryItem, GatewayFaultItem, GatewayItem } from './queries.ts';
export type { PayerAuthenticator } from './routes.ts';
export {
  type IndexerService,
  type StartIndexerServiceParameters,
  startIndexerService,
} from './service.ts';
export type { Leases, Row, Sql } from './sql.ts';
export type {
  Amount,
  IndexerMetrics,
  Logger,
  NetworkContext,
  NetworkHub,
  NetworkHubWorker,
} from './types.ts';
