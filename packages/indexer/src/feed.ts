import { sleep } from '@aipg/core';
import { NetworkError } from './errors.ts';
import type { IndexerProgress, IndexerStatus } from './indexer.ts';
import {
  activitySince,
  DEFAULT_ACTIVITY_KINDS,
  eventItem,
  feedPosition,
  indexerView,
  jobItem,
} from './queries.ts';
import type { Sql } from './sql.ts';
import type { NetworkContext, NetworkHub } from './types.ts';

export type FeedOptions = {
  /** How often the feed looks for new rows while someone listens. */
  pollIntervalMs: number;
  /** Comment line sent to keep proxies from closing an idle stream. */
  heartbeatMs: number;
  /** `status` event interval (indexer position, workers online). */
  statusIntervalMs: number;
  /** Concurrent streams; more get 503. */
  maxClients: number;
};

export const defaultFeedOptions: FeedOptions = {
  pollIntervalMs: 1_000,
  heartbeatMs: 15_000,
  statusIntervalMs: 5_000,
  maxClients: 1_000,
};

/** A job completed this long ago may still be committing: the poll re-reads that much (ids dedupe). */
const JOB_OVERLAP_MS = 5_000;

type Client = { send(text: string): void; close(): void };

export type Feed = ReturnType<typeof createFeed>;

/**
 * The live activity stream behind `GET /v1/network/events/stream` (server-sent events). While at
 * least one client listens it polls the database, never the chain, for new indexed events and
 * finished jobs, and fans each out once to every client:
 *
 *   event: activity   data: ActivityItem (same shape as /v1/network/activity)
 *   event: reorg      data: { fork_block }   items from that block on were replaced
 *   event: status     data: { indexer, workers_online }   every few seconds
 *   : ping            heartbeat comment
 *
 * It reads the database rather than listening to this process's indexer, so every replica of a
 * gateway streams the same feed whichever one indexes.
 */
export function createFeed({
  ctx,
  db,
  hub,
  status,
  options,
  onActivity,
}: {
  ctx: NetworkContext;
  db: Sql;
  hub?: NetworkHub | undefined;
  status(): IndexerStatus;
  options: FeedOptions;
  /** Called before new activity is streamed (the API's read cache keys on it). */
  onActivity?: (() => void) | undefined;
}) {
  const { logger } = ctx;
  const clients = new Set<Client>();
  const gauge = ctx.metrics.gauge(
    'aipg_gateway_network_stream_clients',
    'Clients of the live activity stream.',
  );
  const kinds = [...DEFAULT_ACTIVITY_KINDS];
  let pos: { block: number; logIndex: number; jobsSince: number } | undefined;
  const seenJobs = new Map<string, number>();
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let lastReorgs = -1;
  let stopped = false;
  const controller = new AbortController();

  function broadcast(event: string, data: unknown, id?: string) {
    const text = `event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.send(text);
  }

  function statusPayload() {
    return { indexer: indexerView(status()), workers_online: hub?.workers().length ?? 0 };
  }

  async function poll() {
    if (!pos) {
      const [p, now] = await Promise.all([
        feedPosition(db),
        db.query<{ ms: number }>('SELECT (extract(epoch FROM now()) * 1000)::float8 AS ms'),
      ]);
      pos = { ...p, jobsSince: Number(now[0]?.ms ?? Date.now()) };
      lastReorgs = status().reorgs;
    }
    const s = status();
    if (s.reorgs !== lastReorgs) {
      lastReorgs = s.reorgs;
      if (s.lastReorgBlock !== null && s.lastReorgBlock <= pos.block) {
        pos.block = s.lastReorgBlock - 1;
        pos.logIndex = 2_147_483_647; // every log of the fork block again (log_index is an int)
        broadcast('reorg', { fork_block: s.lastReorgBlock });
      }
    } else {
      // Another replica indexes: its rewind shows as our position being ahead of the table.
      const top = await feedPosition(db);
      if (top.block < pos.block) {
        broadcast('reorg', { fork_block: top.block + 1 });
        pos.block = top.block;
        pos.logIndex = top.logIndex;
      }
    }
    const { events, jobs } = await activitySince(db, pos, kinds);
    if (events.length > 0 || jobs.some((r) => !seenJobs.has(String(r.id)))) onActivity?.();
    for (const r of events) {
      const item = eventItem(r);
      broadcast('activity', item, item.id);
    }
    const last = events.at(-1);
    if (last) {
      pos.block = Number(last.block);
      pos.logIndex = Number(last.log_index);
    }
    let newest = pos.jobsSince;
    for (const r of jobs) {
      const id = String(r.id);
      const t = Number(r.t) * 1000;
      newest = Math.max(newest, t);
      if (seenJobs.has(id)) continue;
      seenJobs.set(id, t);
      const item = jobItem(r);
      broadcast('activity', item, item.id);
    }
    pos.jobsSince = Math.max(pos.jobsSince, newest - JOB_OVERLAP_MS);
    for (const [id, t] of seenJobs) if (t < pos.jobsSince - JOB_OVERLAP_MS) seenJobs.delete(id);
  }

  async function run() {
    let lastStatus = 0;
    while (clients.size > 0 && !stopped) {
      try {
        await poll();
      } catch (error) {
        logger.warn({ msg: 'network feed: poll failed', error });
      }
      if (Date.now() - lastStatus >= options.statusIntervalMs) {
        lastStatus = Date.now();
        broadcast('status', statusPayload());
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        void sleep(options.pollIntervalMs, controller.signal).then(resolve);
      });
      wake = undefined;
    }
    // Nobody listens: forget the position, the next client starts from "now".
    pos = undefined;
    loop = undefined;
  }

  return {
    clients: () => clients.size,
    /** Called by the indexer after each range or rewind: stream at once instead of at the next tick. */
    notify(_p: IndexerProgress) {
      wake?.();
    },
    /** A new SSE stream (429 past `maxClients`); it lives until the client goes away or `stop()`. */
    subscribe(signal?: AbortSignal): Response {
      if (stopped) throw new NetworkError('shutting_down', 'the gateway is shutting down');
      if (clients.size >= options.maxClients) {
        throw new NetworkError('rate_limit_exceeded', 'too many live streams are open; retry shortly', {
          headers: { 'retry-after': '5' },
        });
      }
      const encoder = new TextEncoder();
      let client: Client | undefined;
      let heartbeat: NodeJS.Timeout | undefined;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          let closed = false;
          client = {
            send(text) {
              if (closed) return;
              try {
                controller.enqueue(encoder.encode(text));
              } catch {
                this.close();
              }
            },
            close() {
              if (closed) return;
              closed = true;
              clearInterval(heartbeat);
              if (client) clients.delete(client);
              gauge.set(undefined, clients.size);
              try {
                controller.close();
              } catch {
                // already closed by the reader
              }
            },
          };
          clients.add(client);
          gauge.set(undefined, clients.size);
          client.send(`retry: 3000\nevent: hello\ndata: ${JSON.stringify(statusPayload())}\n\n`);
          heartbeat = setInterval(() => client?.send(': ping\n\n'), options.heartbeatMs);
          heartbeat.unref();
          loop ??= run();
        },
        cancel() {
          client?.close();
        },
      });
      signal?.addEventListener('abort', () => client?.close(), { once: true });
      return new Response(stream, {
        status: 200,
        headers: {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
        },
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      controller.abort();
      wake?.();
      for (const c of [...clients]) c.close();
      await loop;
    },
  };
}
