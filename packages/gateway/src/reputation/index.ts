import { randomBytes } from 'node:crypto';
import type { ReadClient } from '@aipg/chain';
import { createGridFollower, type GridSink, type Leases } from '@aipg/indexer';
import type { Address, Hex } from 'viem';
import type { Common } from '../common.ts';
import type { GatewayOptions } from '../options.ts';
import type { Sql } from '../storage/index.ts';
import { decodeReputationLog, type ReputationEvent, reputationAbi } from './events.ts';
import { type AuditRecord, reputationFactor } from './policy.ts';
import { createReputationStore } from './store.ts';

const LEASE = 'reputation';

export type ReputationOptions = GatewayOptions['reputation'];

export type ReputationStatus = {
  /** First block followed (the Grid's deployment block). */
  fromBlock: bigint | null;
  /** Last block whose events are applied. */
  syncedBlock: bigint | null;
  headBlock: bigint | null;
  /** Whether this process follows the chain (one replica does; the others read its counts). */
  leader: boolean;
  lastError: string | null;
  workers: number;
};

export type ReputationFeature = ReturnType<typeof createReputation>;

/**
 * Audit history for routing (docs/DESIGN.md §3, §5). Follows the Grid's `AuditFinalized` verdicts and the
 * `BondSlashed` events of worker bonds from the deployment block on, in bounded `eth_getLogs` ranges;
 * per-worker counts (PASS, FAIL, inconclusive, slashes, last FAIL / slash time) and the cursor move
 * in one transaction, so a restart resumes where it stopped and a range is never counted twice (one
 * replica follows, under a lease; the others reload the counts). A chain that no longer has the last
 * block applied (a reorg, an anvil restart behind the same database) is recounted from the start.
 *
 * `factor(owner)` is routing's `Reputation` hook: see `reputationFactor` (neutral for workers never
 * audited, preferred with a clean history, excluded for a cool-down after a FAIL, penalised after).
 */
export function createReputation({
  common,
  db,
  client,
  grid,
  chainId,
  leases,
  options,
  now,
}: {
  common: Pick<Common, 'logger' | 'metrics'>;
  db: Sql;
  client: ReadClient;
  grid: Address;
  chainId: number;
  leases?: Leases | undefined;
  options: ReputationOptions;
  /** Clock in ms for the cool-downs; default: the chain's (head timestamp, advanced by wall time). */
  now?: (() => number) | undefined;
}) {
  const { logger, metrics } = common;
  const store = createReputationStore(db);
  const holder = `reputation-${randomBytes(6).toString('hex')}`;
  const records = new Map<string, AuditRecord>();
  const status: ReputationStatus = {
    fromBlock: null,
    syncedBlock: null,
    headBlock: null,
    leader: !leases,
    lastError: null,
    workers: 0,
  };
  let head: { timestamp: number; seenAt: number } | undefined;
  // Only the two events reputation counts, from the RPC; the follower does ranges, the deployment block and reorgs.
  const follower = createGridFollower({
    client,
    grid,
    logger,
    name: 'reputation',
    events: reputationAbi,
    options: {
      maxBlockRange: options.maxBlockRange,
      confirmations: options.confirmations,
      keepBlocks: 1,
      rpcConcurrency: 8,
    },
  });
  let initialized = false;
  let stopped = false;
  let loop: Promise<void> | undefined;
  let current: Promise<number> | undefined;
  let wake: (() => void) | undefined;

  const eventsCounter = metrics.counter(
    'aipg_gateway_reputation_events_total',
    'Audit verdicts and worker slashes applied to routing reputation, by kind.',
  );
  const syncedGauge = metrics.gauge(
    'aipg_gateway_reputation_synced_block',
    'Last Grid block whose audit verdicts and slashes routing has applied.',
  );

  const clock = () => (now ? now() : head ? head.timestamp + (Date.now() - head.seenAt) : Date.now());

  async function reload(): Promise<void> {
    const rows = await store.loadAll();
    records.clear();
    for (const r of rows) records.set(r.owner.toLowerCase(), r);
    status.workers = records.size;
  }

  async function init(reset = false): Promise<void> {
    const { cursor, cleared } = await store.initCursor({
      chainId,
      grid,
      reset,
      fromBlock: async () => BigInt(options.fromBlock ?? (await follower.findDeployBlock())),
    });
    if (cleared)
      logger.warn({
        msg: 'reputation: the stored history is of another chain, Grid or branch: recounting',
        from_block: cursor.fromBlock.toString(),
      });
    status.fromBlock = cursor.fromBlock;
    status.syncedBlock = cursor.nextBlock - 1n;
    initialized = true;
  }

  /**
   * The per-worker counts as the follower's sink: the cursor keeps the last block's hash only, so a
   * chain that lost it is recounted from the start.
   */
  let applied = 0;
  const sink: GridSink = {
    async next() {
      let cursor = await store.readCursor();
      if (!cursor) {
        await init();
        cursor = await store.readCursor();
      }
      if (!cursor) throw new Error('reputation cursor missing');
      return Number(cursor.nextBlock);
    },
    async recent() {
      const cursor = await store.readCursor();
      return cursor?.lastBlockHash && cursor.nextBlock > cursor.fromBlock
        ? [{ number: Number(cursor.nextBlock - 1n), hash: cursor.lastBlockHash }]
        : [];
    },
    async apply(range) {
      const events = range.events
        .map(decodeReputationLog)
        .filter((e): e is ReputationEvent => e !== undefined)
        .map((e) => {
          const block = range.blocks.get(Number(e.blockNumber));
          return { ...e, time: block ? block.timestamp * 1000 : clock() };
        });
      const ok = await store.apply({
        from: BigInt(range.fromBlock),
        to: BigInt(range.toBlock),
        toHash: range.blocks.get(range.toBlock)?.hash as Hex,
        events,
      });
      if (!ok) return false;
      applied += events.length;
      for (const e of events) eventsCounter.inc({ kind: e.type === 'slash' ? 'slash' : e.verdict });
      for (const e of events) {
        logger.info({
          msg: e.type === 'slash' ? 'reputation: worker slashed' : `reputation: audit ${e.verdict}`,
          worker: e.worker,
          block: e.blockNumber.toString(),
          ...(e.type === 'slash'
            ? { amount: e.amount.toString() }
            : { batch_id: e.batchId.toString(), leaf: e.leaf }),
        });
      }
      status.syncedBlock = BigInt(range.toBlock);
      syncedGauge.set(undefined, range.toBlock);
      return true;
    },
    rewind: () => init(true),
  };

  /** Follows the chain up to its head (minus confirmations). Returns the events applied. */
  async function catchUp(): Promise<number> {
    if (!initialized) await init();
    if (leases) {
      status.leader = await leases.acquire(LEASE, holder, Math.max(30_000, options.pollIntervalMs * 10));
      if (!status.leader) {
        await reload();
        return 0;
      }
    }
    const before = applied;
    await follower.catchUp(sink, {
      stopped: () => stopped,
      onHead: (latest) => {
        head = { timestamp: latest.timestamp * 1000, seenAt: Date.now() };
        status.headBlock = BigInt(latest.number);
      },
    });
    const cursor = await store.readCursor();
    if (cursor) status.syncedBlock = cursor.nextBlock - 1n;
    await reload();
    return applied - before;
  }

  function syncNow(): Promise<number> {
    current ??= catchUp()
      .then((n) => {
        status.lastError = null;
        return n;
      })
      .finally(() => {
        current = undefined;
      });
    return current;
  }

  return {
    /** Routing's hook: the worker's audit-history factor now. */
    factor(owner: Address): number {
      return reputationFactor(records.get(owner.toLowerCase()), clock(), options);
    },
    /** A worker's followed audit history (undefined: never audited). */
    record(owner: Address): AuditRecord | undefined {
      const r = records.get(owner.toLowerCase());
      return r ? { ...r } : undefined;
    },
    status(): ReputationStatus {
      return { ...status };
    },
    /** Loads the stored counts (routing uses them at once), then follows the chain in the background. */
    async start(): Promise<void> {
      await reload();
      loop = (async () => {
        while (!stopped) {
          try {
            await syncNow();
          } catch (error) {
            status.lastError = error instanceof Error ? error.message : String(error);
            logger.warn({ msg: 'reputation: following the chain failed; retrying', error: status.lastError });
          }
          if (stopped) break;
          await new Promise<void>((resolve) => {
            wake = resolve;
            const t = setTimeout(resolve, options.pollIntervalMs);
            t.unref();
          });
          wake = undefined;
        }
      })();
    },
    /** Catches up with the chain now (tests and tools; the loop does it on its own). */
    syncNow,
    async stop(): Promise<void> {
      stopped = true;
      wake?.();
      await current?.catch(() => {});
      await loop;
      if (leases && status.leader) await leases.release(LEASE, holder).catch(() => {});
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
