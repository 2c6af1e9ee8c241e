import type { AddressInfo } from 'node:net';
import { startMetricsServer } from '@aipg/daemon';
import { createNetwork } from '@aipg/indexer';
import { serve } from '@hono/node-server';
import type { Address } from 'viem';
import { type Api, createApi } from './api/index.ts';
import { createImageChecker } from './audit/image-check.ts';
import { createAudit } from './audit/index.ts';
import { createAuditRoutes } from './audit/routes.ts';
import { createScorer } from './audit/score.ts';
import { apiKeyAuthenticator, createAuth } from './auth/index.ts';
import { createBilling } from './billing/index.ts';
import { createChain } from './chain/index.ts';
import { type Common, createCommon, type Logger, sleep } from './common.ts';
import { createHub, WORKER_PATH } from './hub/index.ts';
import { createJobs } from './jobs/index.ts';
import type { GatewayOptions } from './options.ts';
import { createReputation, type ReputationFeature } from './reputation/index.ts';
import { createRouting, type Reputation } from './routing/index.ts';
import { createSettlement } from './settlement/index.ts';
import { createStorage, type Database, type WorkerStats } from './storage/index.ts';
import { createTee } from './tee/index.ts';
import { createTokenizers } from './tokenizers/index.ts';
import { createWebhooks } from './webhooks/index.ts';

export type StartGatewayDependencies = {
  /** A pino logger to use instead of one built from `options.log`. */
  logger?: Logger | undefined;
  /**
   * Audit-history hook for routing. Default: the `reputation` feature, which follows audit verdicts
   * and slashes on chain (neutral when `reputation.enabled` is false).
   */
  reputation?: Reputation | undefined;
};

export type StartGatewayReturnType = {
  /** `http://host:port` of the HTTP API. */
  url: string;
  /** `ws://host:port/v1/workers/connect` for workers. */
  workerUrl: string;
  port: number;
  /** The gateway's address (payers approve it; it settles). */
  gateway: Address;
  chainId: number;
  common: Common;
  /** The Hono app, for in-process requests (`app.request('/v1/models')`). */
  app: Api;
  /** The gateway's database (inspection by tests and tools; the gateway owns its writes). */
  db: Database;
  /** The audit history routing uses, read from the network indexer (undefined when disabled or replaced by `deps.reputation`). */
  reputation: ReputationFeature | undefined;
  /** Settles every waiting receipt now (the loop does it on its own; for tests and tools). */
  settleNow(): Promise<void>;
  /** What routing knows of a worker (bond owner): reliability, speed, jobs served and failed. */
  workerStats(owner: Address): WorkerStats;
  /** Graceful stop: no new requests, in-flight jobs finish (bounded), settlement flushed, database closed. */
  stop(): Promise<void>;
};

/**
 * Starts a gateway: database (migrated), chain clients, worker hub, HTTP API, async job queue and
 * the settlement loop. `options.port` 0 picks a free port. Signals are the caller's business (see
 * `bin/gateway.ts`); call `stop()` to shut down cleanly.
 */
export async function startGateway(
  options: GatewayOptions,
  deps: StartGatewayDependencies = {},
): Promise<StartGatewayReturnType> {
  return createGateway({ common: createCommon(options, deps.logger), reputation: deps.reputation });
}

export type CreateGatewayParameters = {
  /** Options, logger, metrics and shutdown (`createCommon`), as every daemon's composition root takes them. */
  common: Common;
} & Omit<StartGatewayDependencies, 'logger'>;

/** `startGateway` on a `common` the caller built (the daemons' one shape: `createX({ common, … })`). */
export async function createGateway({
  common,
  ...deps
}: CreateGatewayParameters): Promise<StartGatewayReturnType> {
  const { logger, shutdown, options } = common;
  for (const line of options.deprecations ?? []) logger.warn({ msg: line });
  const storage = await createStorage({ common });
  shutdown.add('database', () => storage.close());
  try {
    const chain = await createChain({ common });
    // Reputation counts the audit events the network indexer stores (it follows nothing itself); the
    // indexer is built below, once the hub exists.
    let network: ReturnType<typeof createNetwork> | undefined;
    const followed =
      deps.reputation || !options.reputation.enabled
        ? undefined
        : createReputation({
            common,
            db: storage.db,
            grid: chain.grid,
            chainId: chain.chainId,
            source: () => network,
            options: options.reputation,
          });
    if (followed) shutdown.add('reputation', () => followed.stop());
    const reputation = deps.reputation ?? followed;
    const routing = createRouting({ common, storage, reputation });
    const hub = createHub({ common, chain, routing });
    const tee = createTee({ common, storage, hub });
    shutdown.add('tee', () => tee.stop());
    const auth = createAuth({ common, storage, chain });
    const billing = createBilling({ storage, chain });
    const settlement = createSettlement({ common, storage, chain });
    const tokenizers = createTokenizers({ logger, dir: options.tokenizers.dir });
    shutdown.add('tokenizers', () => tokenizers.close());
    const jobs = createJobs({
      common,
      storage,
      chain,
      billing,
      hub,
      routing,
      tokenizers,
      tee,
      onReceipt: () => settlement.notify(),
    });
    const webhooks = createWebhooks({ common, storage, chain });
    const audit = createAudit({ common, storage, chain });
    // The dashboard's data: an event indexer on its own loop, read-only JSON endpoints, static pages.
    network = createNetwork({
      common,
      db: storage.db,
      publicClient: chain.publicClient,
      deployment: { grid: chain.grid, chainId: chain.chainId, deployBlock: options.network.deployBlock },
      hub,
      leases: storage.leases,
      follow: options.network.indexer,
      authenticate: apiKeyAuthenticator(auth),
    });
    const started = network;
    await started.start();
    shutdown.add('network', () => started.stop());
    const scorer = createScorer({ common, storage, hub, reputation });
    const app = createApi({ common, storage, chain, auth, billing, hub, jobs, audit, tee });
    const imageChecker = createImageChecker({ common, storage, hub });
    app.route('/', createAuditRoutes({ audit, scorer, imageChecker }));
    app.route('/v1/network', started.router);
    app.route('/', started.dashboard);

    const server = serve({ fetch: app.fetch, port: options.port, hostname: options.host });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
    const port = (server.address() as AddressInfo).port;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;

    const timeout = options.http.shutdownTimeoutMs;
    let serverClosed: Promise<void> | undefined;
    shutdown.add('settlement', () => settlement.stop(Math.max(1_000, timeout / 3)));
    shutdown.add('http: drain', async () => {
      // Responses are done (jobs drained); keep-alive sockets that go idle are closed as they do.
      const s = server as import('node:http').Server;
      let closed = false;
      void serverClosed?.then(() => {
        closed = true;
      });
      const deadline = Date.now() + Math.min(5_000, timeout);
      while (!closed && Date.now() < deadline) {
        s.closeIdleConnections?.();
        await sleep(20);
      }
      s.closeAllConnections?.();
    });
    // Worker sockets are upgraded HTTP connections: the server only closes once they are gone.
    shutdown.add('hub', () => hub.close(1_000));
    shutdown.add('webhooks', () => webhooks.stop());
    shutdown.add('jobs', () => jobs.stop(timeout));
    shutdown.add('http: stop accepting', () => {
      const s = server as import('node:http').Server;
      serverClosed = new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeIdleConnections?.();
    });

    if (options.metrics) {
      const metricsServer = await startMetricsServer(common.metrics, {
        ...options.metrics,
        health: () => ({ ok: !shutdown.isShuttingDown(), workers: hub.workers().length }),
      });
      shutdown.add('metrics', () => metricsServer.close());
      logger.info({ msg: 'metrics listening', url: metricsServer.url });
    }
    await followed?.start();
    await jobs.start();
    webhooks.start();
    settlement.start();
    logger.info({
      msg: 'gateway listening',
      url,
      workers: `${url.replace(/^http/, 'ws')}${WORKER_PATH}`,
      gateway: chain.gateway,
      chain_id: chain.chainId,
    });

    return {
      url,
      workerUrl: `${url.replace(/^http/, 'ws')}${WORKER_PATH}`,
      port,
      gateway: chain.gateway,
      chainId: chain.chainId,
      common,
      app,
      db: storage.db,
      reputation: followed,
      settleNow: () => settlement.flush(),
      workerStats: (owner) => routing.stats(owner),
      async stop() {
        logger.info({ msg: 'gateway stopping' });
        await shutdown.run();
        logger.info({ msg: 'gateway stopped' });
      },
    };
  } catch (error) {
    await shutdown.run();
    throw error;
  }
}
