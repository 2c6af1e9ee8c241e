import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '@aipg/core';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { type CreateNetworkParameters, createNetwork, type Network } from './index.ts';
import { type IndexerMetrics, type Logger, silentContext } from './types.ts';

export type StartIndexerServiceParameters = Omit<CreateNetworkParameters, 'common' | 'follow'> & {
  logger?: Logger | undefined;
  metrics?: IndexerMetrics | undefined;
  /** Listen address (default 127.0.0.1). */
  host?: string | undefined;
  /** Listen port; 0 (the default) picks a free one. */
  port?: number | undefined;
  /** How long `stop()` waits for open responses before it closes their sockets (default 5 s). */
  shutdownTimeoutMs?: number | undefined;
};

export type IndexerService = {
  /** `http://host:port`: `/v1/network/*` and the dashboard. */
  url: string;
  port: number;
  network: Network;
  /** Stops accepting, ends the live streams, lets open responses finish (bounded), then stops following. */
  stop(): Promise<void>;
};

/**
 * The network indexer as its own process: follows the Grid into `db` (the gateway's database, whose jobs,
 * receipts and API keys the read API also reads) and serves `/v1/network/*` and the dashboard on its own
 * port. The gateways on that database then run with their indexer off (`network.indexer` false), so one
 * process follows the chain. With replicas of this service on one PostgreSQL, pass `leases`: one follows.
 *
 *   const service = await startIndexerService({ db, publicClient, deployment: { grid, chainId }, port: 8090 });
 *   process.on('SIGTERM', () => service.stop());
 */
export async function startIndexerService(p: StartIndexerServiceParameters): Promise<IndexerService> {
  const silent = silentContext();
  const logger = p.logger ?? silent.logger;
  const shutdown = new AbortController();
  const network = createNetwork({
    ...p,
    common: { logger, metrics: p.metrics ?? silent.metrics, shutdown: { signal: shutdown.signal } },
  });
  await network.start();
  const app = new Hono();
  app.route('/v1/network', network.router);
  app.route('/', network.dashboard);

  const host = p.host ?? '127.0.0.1';
  const server = serve({ fetch: app.fetch, port: p.port ?? 0, hostname: host }) as Server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (error) {
    await network.stop();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown === '0.0.0.0' || shown === '[::]' ? '127.0.0.1' : shown}:${port}`;
  logger.info({
    msg: 'network indexer listening',
    url,
    grid: p.deployment.grid,
    chain_id: p.deployment.chainId,
  });

  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    network,
    stop() {
      stopping ??= (async () => {
        logger.info({ msg: 'network indexer stopping' });
        shutdown.abort(); // the live streams end now: they never hold the drain
        let closed = false;
        const serverClosed = new Promise<void>((resolve) =>
          server.close(() => {
            closed = true;
            resolve();
          }),
        );
        const deadline = Date.now() + (p.shutdownTimeoutMs ?? 5_000);
        while (!closed && Date.now() < deadline) {
          server.closeIdleConnections();
          await sleep(20);
        }
        server.closeAllConnections();
        await serverClosed;
        await network.stop();
        logger.info({ msg: 'network indexer stopped' });
      })();
      return stopping;
    },
  };
}
