import { randomBytes } from 'node:crypto';
import type { ReadClient } from '@aipg/chain';
import type { Address, Hex } from 'viem';
import { getBlock, getCode, getLogs } from 'viem/actions';
import type { Common } from '../common.ts';
import type { GatewayOptions } from '../options.ts';
import type { Sql } from '../storage/index.ts';
import { decodeReputationLog, type RawLog, type ReputationEvent, reputationAbi } from './events.ts';
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

export type Leases = {
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
};

function isRangeError(error: unknown): boolean {
  const text =
    String((error as { details?: string })?.details ?? '') + String((error as Error)?.message ?? '');
  return /range|limit|too many|exceed|response size|query returned more/i.test(text);
}

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
  let range = options.maxBlockRange;
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

  /** The diamond's deployment block when not configured: a binary search on `eth_getCode`. */
  async function findDeployBlock(): Promise<bigint> {
    const latest = (await getBlock(client, { blockTag: 'latest' })).number ?? 0n;
    try {
      if (!(await getCode(client, { address: grid, blockNumber: latest }))) return latest;
      let lo = 0n;
      let hi = latest;
      while (lo < hi) {
        const mid = (lo + hi) / 2n;
        const code = await getCode(client, { address: grid, blockNumber: mid });
        if (code && code !== '0x') hi = mid;
        else lo = mid + 1n;
      }
      return lo;
    } catch (error) {
      logger.warn({
        msg: 'reputation: could not find the Grid deployment block (no archive state?): reading from block 0',
        error,
      });
      return 0n;
    }
  }

  async function init(reset = false): Promise<void> {
    const { cursor, cleared } = await store.initCursor({
      chainId,
      grid,
      reset,
      fromBlock: async () =>
        options.fromBlock !== undefined ? BigInt(options.fromBlock) : await findDeployBlock(),
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

  async function blockAt(n: bigint) {
    try {
      return await getBlock(client, { blockNumber: n });
    } catch (error) {
      if (/not found|could not be found/i.test(String((error as Error).message))) return undefined;
      throw error;
    }
  }

  /** Applies `[from, to]`; false when the range was refused (halved) or another replica moved first. */
  async function applyRange(from: bigint, to: bigint): Promise<{ ok: boolean; events: number }> {
    let logs: RawLog[];
    try {
      logs = (await getLogs(client, {
        address: grid,
        events: reputationAbi,
        fromBlock: from,
        toBlock: to,
      })) as unknown as RawLog[];
    } catch (error) {
      if (isRangeError(error) && range > 1) {
        range = Math.max(1, Math.floor(range / 2));
        logger.debug({ msg: 'reputation: log range refused, halving', range });
        return { ok: false, events: 0 };
      }
      throw error;
    }
    const decoded = logs.map(decodeReputationLog).filter((e): e is ReputationEvent => e !== undefined);
    const numbers = [
      ...new Set([to, ...logs.flatMap((l) => (l.blockNumber === null ? [] : [l.blockNumber]))]),
    ];
    const blocks = new Map<bigint, { hash: Hex; timestamp: number }>();
    await Promise.all(
      numbers.map(async (n) => {
        const b = await getBlock(client, { blockNumber: n });
        blocks.set(n, { hash: b.hash as Hex, timestamp: Number(b.timestamp) * 1000 });
      }),
    );
    // A log from another branch than the headers just read: the chain reorganised meanwhile.
    for (const l of logs as (RawLog & { blockHash?: Hex | null })[]) {
      const b = l.blockNumber === null ? undefined : blocks.get(l.blockNumber);
      if (b && l.blockHash && b.hash !== l.blockHash) return { ok: false, events: 0 };
    }
    const events = decoded
      .sort((a, b) =>
        a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
      )
      .map((e) => ({ ...e, time: blocks.get(e.blockNumber)?.timestamp ?? clock() }));
    const ok = await store.apply({ from, to, toHash: blocks.get(to)?.hash as Hex, events });
    if (ok) {
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
    }
    return { ok, events: ok ? events.length : 0 };
  }

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
    const latest = await getBlock(client, { blockTag: 'latest' });
    head = { timestamp: Number(latest.timestamp) * 1000, seenAt: Date.now() };
    status.headBlock = latest.number;
    let cursor = await store.readCursor();
    if (!cursor) {
      await init();
      cursor = await store.readCursor();
    }
    if (!cursor) throw new Error('reputation cursor missing');
    // The chain must still have the last block applied, as it was.
    if (cursor.lastBlockHash && cursor.nextBlock > cursor.fromBlock) {
      const last = cursor.nextBlock - 1n;
      const b = last > (latest.number ?? 0n) ? undefined : await blockAt(last);
      if (!b || b.hash !== cursor.lastBlockHash) {
        await init(true);
        cursor = await store.readCursor();
        if (!cursor) throw new Error('reputation cursor missing');
      }
    }
    const target = (latest.number ?? 0n) - BigInt(options.confirmations);
    let next = cursor.nextBlock;
    let applied = 0;
    while (next <= target && !stopped) {
      const to = next + BigInt(range) - 1n < target ? next + BigInt(range) - 1n : target;
      const r = await applyRange(next, to);
      if (!r.ok) {
        const moved = await store.readCursor();
        if (moved && moved.nextBlock !== next) next = moved.nextBlock;
        continue;
      }
      applied += r.events;
      next = to + 1n;
      status.syncedBlock = to;
      syncedGauge.set(undefined, Number(to));
    }
    status.syncedBlock = next - 1n;
    await reload();
    return applied;
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
