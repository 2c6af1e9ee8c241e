import type { IndexerProgress, IndexerStatus } from '@aipg/indexer';
import { type Address, getAddress, type Hex } from 'viem';
import type { Common } from '../common.ts';
import type { GatewayOptions } from '../options.ts';
import type { Sql } from '../storage/index.ts';
import { decodeReputationLog, type ReputationEvent } from './events.ts';
import { type AuditRecord, reputationFactor } from './policy.ts';

/**
 * Reputation reads what the network indexer stored (its first block, log ranges and confirmations are the
 * indexer's). `pollIntervalMs` is how often it looks when no indexer runs in this process.
 */
export type ReputationOptions = GatewayOptions['reputation'];

export type ReputationStatus = {
  /** First block indexed (the Grid's deployment block). */
  fromBlock: bigint | null;
  /** Last block whose events are counted. */
  syncedBlock: bigint | null;
  headBlock: bigint | null;
  /** Whether this process follows the chain (its network indexer holds the lease); false: it reads. */
  leader: boolean;
  lastError: string | null;
  workers: number;
};

/** The network indexer of this process, when it runs one (`createNetwork(...)`). */
export type ReputationSource = {
  indexer: { syncNow(): Promise<void>; status(): IndexerStatus };
  onProgress(listener: (p: IndexerProgress) => void): () => void;
};

export type ReputationFeature = ReturnType<typeof createReputation>;

/** The Grid events reputation counts, as the network indexer names them. */
const NAMES = ['AuditFinalized', 'BondSlashed'];

/**
 * Audit history for routing (docs/DESIGN.md §3, §5): per-worker counts of the Grid's `AuditFinalized`
 * verdicts (PASS, FAIL, inconclusive, last FAIL time) and of the `BondSlashed` events of worker bonds. It
 * follows nothing itself: it reads them from the network indexer's `network_events`, which the one Grid log
 * follower keeps (in this process, or in the standalone indexer on the same database), so what it counts
 * is exactly what the indexer stored: each log once (keyed by block and log index), none missed across
 * restarts and replicas, and a reorg the indexer undid (its cursor's reorg count moves) is recounted from
 * the events still stored. New events are folded in as the indexer applies them (`source.onProgress`), or
 * at each poll when another process indexes.
 *
 * `factor(owner)` is routing's `Reputation` hook: see `reputationFactor` (neutral for workers never
 * audited, preferred with a clean history, excluded for a cool-down after a FAIL, penalised after).
 */
export function createReputation({
  common,
  db,
  grid,
  chainId,
  source,
  options,
  now,
}: {
  common: Pick<Common, 'logger' | 'metrics'>;
  db: Sql;
  grid: Address;
  chainId: number;
  /** This process's network indexer (a getter: the gateway builds it after routing); none: read only. */
  source?: (() => ReputationSource | undefined) | undefined;
  options: ReputationOptions;
  /** Clock in ms for the cool-downs; default: the chain's (the last indexed block's time, advanced by wall time). */
  now?: (() => number) | undefined;
}) {
  const { logger, metrics } = common;
  const records = new Map<string, AuditRecord>();
  const status: ReputationStatus = {
    fromBlock: null,
    syncedBlock: null,
    headBlock: null,
    leader: false,
    lastError: null,
    workers: 0,
  };
  let head: { timestamp: number; seenAt: number } | undefined;
  /** What is folded into `records`: the indexer's run (chain, Grid, start, reorgs) and the last event. */
  let seen: { run: string; block: bigint; logIndex: number } | undefined;
  let folded = 0;
  let stopped = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let unsubscribe: (() => void) | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const eventsCounter = metrics.counter(
    'aipg_gateway_reputation_events_total',
    'Audit verdicts and worker slashes applied to routing reputation, by kind.',
  );
  const syncedGauge = metrics.gauge(
    'aipg_gateway_reputation_synced_block',
    'Last Grid block whose audit verdicts and slashes routing has applied.',
  );

  const clock = () => (now ? now() : head ? head.timestamp + (Date.now() - head.seenAt) : Date.now());

  function fold(e: ReputationEvent & { time: number }) {
    const key = e.worker.toLowerCase();
    let r = records.get(key);
    if (!r) {
      r = {
        owner: e.worker,
        passes: 0,
        fails: 0,
        inconclusive: 0,
        slashes: 0,
        slashed: 0n,
        lastFailAt: null,
        lastSlashAt: null,
        lastEventBlock: e.blockNumber,
      };
      records.set(key, r);
    }
    if (e.blockNumber > r.lastEventBlock) r.lastEventBlock = e.blockNumber;
    if (e.type === 'slash') {
      r.slashes += 1;
      r.slashed += e.amount;
      r.lastSlashAt = Math.max(r.lastSlashAt ?? 0, e.time);
    } else if (e.verdict === 'pass') r.passes += 1;
    else if (e.verdict === 'inconclusive') r.inconclusive += 1;
    else {
      r.fails += 1;
      r.lastFailAt = Math.max(r.lastFailAt ?? 0, e.time);
    }
  }

  /** Folds in what the indexer stored since the last look (everything again when its run changed). */
  async function read(): Promise<number> {
    const cursors = await db.query<Record<string, unknown>>(
      `SELECT chain_id, grid, from_block::text AS from_block, next_block::text AS next_block, reorgs
       FROM network_cursor WHERE id = 'grid'`,
    );
    const c = cursors[0];
    if (!c || Number(c.chain_id) !== chainId || String(c.grid) !== grid.toLowerCase()) {
      // Nothing indexed of this Grid yet (or the tables are another Grid's until the indexer starts over).
      records.clear();
      seen = undefined;
      status.workers = 0;
      return 0;
    }
    const next = BigInt(c.next_block as string);
    const run = `${c.from_block}:${c.reorgs}`;
    if (seen?.run !== run) {
      if (seen) logger.info({ msg: 'reputation: the indexer rewound (reorg or a new chain): recounting' });
      records.clear();
      seen = { run, block: -1n, logIndex: -1 };
    }
    const rows = await db.query<Record<string, unknown>>(
      `SELECT block_number::text AS block_number, log_index, topics, data,
         extract(epoch FROM block_time)::float8 AS t
       FROM network_events
       WHERE name = ANY($1::text[]) AND block_number < $2
         AND (block_number > $3 OR (block_number = $3 AND log_index > $4))
       ORDER BY block_number, log_index`,
      [NAMES, next.toString(), seen.block.toString(), seen.logIndex],
    );
    let count = 0;
    for (const r of rows) {
      const blockNumber = BigInt(r.block_number as string);
      const logIndex = Number(r.log_index);
      seen.block = blockNumber;
      seen.logIndex = logIndex;
      const e = decodeReputationLog({
        blockNumber,
        logIndex,
        topics: (typeof r.topics === 'string' ? JSON.parse(r.topics) : r.topics) as Hex[],
        data: r.data as Hex,
      });
      if (!e) continue;
      fold({ ...e, time: Number(r.t) * 1000 });
      count += 1;
      eventsCounter.inc({ kind: e.type === 'slash' ? 'slash' : e.verdict });
      logger.info({
        msg: e.type === 'slash' ? 'reputation: worker slashed' : `reputation: audit ${e.verdict}`,
        worker: getAddress(e.worker),
        block: e.blockNumber.toString(),
        ...(e.type === 'slash'
          ? { amount: e.amount.toString() }
          : { batch_id: e.batchId.toString(), leaf: e.leaf }),
      });
    }
    const last = await db.query<{ timestamp: string }>(
      'SELECT timestamp::text AS timestamp FROM network_blocks ORDER BY number DESC LIMIT 1',
    );
    if (last[0]) head = { timestamp: Number(last[0].timestamp) * 1000, seenAt: Date.now() };
    status.fromBlock = BigInt(c.from_block as string);
    status.syncedBlock = next - 1n;
    status.workers = records.size;
    syncedGauge.set(undefined, Number(next - 1n));
    folded += count;
    return count;
  }

  /** One look at a time, in order (the loop, the indexer's progress and `syncNow` share it). */
  function refresh(): Promise<number> {
    const run = queue.then(read, read);
    queue = run.catch((error: unknown) => {
      status.lastError = error instanceof Error ? error.message : String(error);
      logger.warn({
        msg: 'reputation: reading the indexed events failed; retrying',
        error: status.lastError,
      });
    });
    return run.then((n) => {
      status.lastError = null;
      return n;
    });
  }

  return {
    /** Routing's hook: the worker's audit-history factor now. */
    factor(owner: Address): number {
      return reputationFactor(records.get(owner.toLowerCase()), clock(), options);
    },
    /** A worker's audit history as indexed (undefined: never audited). */
    record(owner: Address): AuditRecord | undefined {
      const r = records.get(owner.toLowerCase());
      return r ? { ...r } : undefined;
    },
    status(): ReputationStatus {
      const indexer = source?.()?.indexer.status();
      return {
        ...status,
        leader: indexer?.leader ?? false,
        headBlock: indexer?.headBlock == null ? status.headBlock : BigInt(indexer.headBlock),
      };
    },
    /**
     * Reads the indexed counts (routing uses them at once), then keeps up: at each range the indexer of this
     * process applies, and every `pollIntervalMs` (another process may index).
     */
    async start(): Promise<void> {
      await refresh().catch(() => {});
      unsubscribe = source?.()?.onProgress(() => void refresh().catch(() => {}));
      loop ??= (async () => {
        while (!stopped) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            const t = setTimeout(resolve, options.pollIntervalMs);
            t.unref();
          });
          wake = undefined;
          if (!stopped) await refresh().catch(() => {});
        }
      })();
    },
    /**
     * Has this process's indexer catch up with the chain, then reads what it stored. Returns the events
     * counted meanwhile (tests and tools; the indexer and the loop do it on their own).
     */
    async syncNow(): Promise<number> {
      const before = folded;
      await source?.()?.indexer.syncNow();
      await refresh();
      return folded - before;
    },
    async stop(): Promise<void> {
      stopped = true;
      unsubscribe?.();
      wake?.();
      await loop;
      await queue;
    },
  };
}

export {
  decodeReputationLog,
  type ReputationEvent,
  reputationAbi,
  VERDICTS,
  type Verdict,
} from './events.ts';
export { type AuditRecord, type ReputationPolicy, reputationFactor } from './policy.ts';
