import type { ReadClient } from '@aipg/chain';
import type { AbiEvent, Address, Hex } from 'viem';
import { getBlock, getCode, getLogs } from 'viem/actions';
import { decodeGridLog, type IndexedEvent, type RawLog } from './events.ts';
import type { Logger } from './types.ts';

/** A block header as the follower read it. */
export type GridBlock = { number: number; hash: Hex; parentHash: Hex; timestamp: number };

/** One range of the Grid's logs, delivered in chain order. */
export type GridRange = {
  fromBlock: number;
  toBlock: number;
  /** The range's Grid events (those `events` selects), by block and log index; unknown logs have `name: null`. */
  events: IndexedEvent[];
  /** Headers of `fromBlock`, `toBlock` and of every block with an event. */
  blocks: ReadonlyMap<number, GridBlock>;
};

/**
 * What a consumer of the Grid's events keeps: its cursor and what it made of the events. Every method
 * reads or writes the consumer's own store, so a restart resumes where the last `apply` committed.
 */
export type GridSink = {
  /** The first block not yet applied. */
  next(): Promise<number>;
  /**
   * Blocks applied (their hashes as read then), newest first, at most `limit`: the follower compares
   * the newest with the chain, and walks them back to find where a reorganised chain forked. A
   * consumer that keeps only its last block returns that one (or none before its first range).
   */
  recent(limit: number): Promise<readonly { number: number; hash: Hex }[]>;
  /**
   * Applies one range and moves the cursor past it, atomically. False when the cursor was no longer
   * `range.fromBlock` (another replica moved it): the follower reads it again.
   */
  apply(range: GridRange): Promise<boolean>;
  /**
   * The chain no longer has blocks this consumer applied: undo everything from `forkBlock` on and
   * resume there. `null`: none of the `recent` blocks is on the chain any more: start over.
   */
  rewind(forkBlock: number | null): Promise<void>;
};

export type GridFollowerOptions = {
  /** Largest `eth_getLogs` range; halved (down to 1) when the RPC refuses a range, doubled back after. */
  maxBlockRange: number;
  /** Blocks behind the head to stay (0 on a local chain: reorgs are detected and undone). */
  confirmations: number;
  /** How many applied blocks to walk back looking for the fork of a reorg. */
  keepBlocks: number;
  /** Parallel header reads per range. */
  rpcConcurrency: number;
};

export const defaultGridFollowerOptions: GridFollowerOptions = {
  maxBlockRange: 2_000,
  confirmations: 0,
  keepBlocks: 2_048,
  rpcConcurrency: 8,
};

export type CatchUpParameters = {
  /** Stop between ranges when this turns true (shutting down). */
  stopped?: (() => boolean) | undefined;
  /** At most this many ranges in this call (the rest waits for the next one). */
  maxRanges?: number | undefined;
  /** The head each round read (status, the chain's clock). */
  onHead?: ((head: { number: number; timestamp: number }) => void) | undefined;
};

export type GridFollower = ReturnType<typeof createGridFollower>;

/** The RPC refused a range as too large (providers word it many ways). */
function isRangeError(error: unknown): boolean {
  const text =
    String((error as { details?: string })?.details ?? '') + String((error as Error)?.message ?? '');
  return /range|limit|too many|exceed|response size|query returned more/i.test(text);
}

export async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  }
  await Promise.all(Array.from({ length: Math.max(0, Math.min(n, items.length)) }, lane));
  return out;
}

/**
 * The one follower of the Grid Diamond's logs: every consumer (the network indexer's tables, the
 * gateway's routing reputation, a validator's settled batches) hands it a `GridSink` and gets the
 * Grid's events in chain order, in bounded `eth_getLogs` ranges (halved while the RPC refuses them),
 * each range with the headers it touched. Before each range it checks that the chain still has the
 * last block the sink applied; when it does not (a reorg, an `anvil_revert`, a fresh devnet behind the
 * same store) it walks the sink's recent blocks back to the last one the chain agrees on and has the
 * sink rewind there. A range whose logs or first block do not hang off what was read (the chain moved
 * meanwhile) is read again. Polling, leases and storage stay with the consumer.
 */
export function createGridFollower({
  client,
  grid,
  logger,
  name = 'grid follower',
  events,
  options = defaultGridFollowerOptions,
}: {
  client: ReadClient;
  grid: Address;
  logger: Logger;
  /** Prefix of the follower's log lines (`network indexer`, `reputation`…). */
  name?: string | undefined;
  /** Only these events (filtered by the RPC); default every log of the Grid. */
  events?: readonly AbiEvent[] | undefined;
  options?: GridFollowerOptions | undefined;
}) {
  let range = options.maxBlockRange;

  async function blockHashAt(n: number): Promise<Hex | null> {
    try {
      return (await getBlock(client, { blockNumber: BigInt(n) })).hash;
    } catch (error) {
      if (/not found|could not be found/i.test(String((error as Error).message))) return null;
      throw error;
    }
  }

  /** Reads `[from, to]`; `undefined` when the range was refused (halved) or the chain moved under it. */
  async function read(from: number, to: number, parentHash: Hex | undefined): Promise<GridRange | undefined> {
    let logs: RawLog[];
    try {
      const bounds = { address: grid, fromBlock: BigInt(from), toBlock: BigInt(to) };
      logs = (await (events
        ? getLogs(client, { ...bounds, events })
        : getLogs(client, bounds))) as unknown as RawLog[];
    } catch (error) {
      if (isRangeError(error) && range > 1) {
        range = Math.max(1, Math.floor(range / 2));
        logger.debug({ msg: `${name}: log range refused, halving`, range });
        return undefined;
      }
      throw error;
    }
    const numbers = [...new Set([from, to, ...logs.map((l) => Number(l.blockNumber))])].sort((a, b) => a - b);
    const blocks = new Map(
      await pool(numbers, options.rpcConcurrency, async (n) => {
        const b = await getBlock(client, { blockNumber: BigInt(n) });
        return [
          n,
          { number: n, hash: b.hash, parentHash: b.parentHash, timestamp: Number(b.timestamp) },
        ] as const;
      }),
    );
    const moved =
      logs.some((l) => blocks.get(Number(l.blockNumber))?.hash !== l.blockHash) ||
      (parentHash !== undefined && blocks.get(from)?.parentHash !== parentHash);
    if (moved) {
      logger.debug({ msg: `${name}: chain moved under a range: reading it again`, from_block: from });
      return undefined;
    }
    const decoded = logs
      .map((l) => decodeGridLog(l, blocks.get(Number(l.blockNumber))!.timestamp))
      .sort((a, b) =>
        a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
      );
    return { fromBlock: from, toBlock: to, events: decoded, blocks };
  }

  /** Where a reorganised chain forked from what `sink` applied: the block after the last one both agree on. */
  async function forkOf(sink: GridSink): Promise<number | null> {
    for (const b of await sink.recent(options.keepBlocks)) {
      if ((await blockHashAt(b.number)) === b.hash) return b.number + 1;
    }
    return null;
  }

  return {
    /** The diamond's deployment block (a binary search on `eth_getCode`); 0 when the node keeps no history. */
    async findDeployBlock(head?: bigint): Promise<number> {
      try {
        const latest = head ?? (await getBlock(client, { blockTag: 'latest' })).number;
        if (!(await getCode(client, { address: grid, blockNumber: latest }))) return Number(latest);
        let lo = 0n;
        let hi = latest;
        while (lo < hi) {
          const mid = (lo + hi) / 2n;
          const code = await getCode(client, { address: grid, blockNumber: mid });
          if (code && code !== '0x') hi = mid;
          else lo = mid + 1n;
        }
        return Number(lo);
      } catch (error) {
        logger.warn({
          msg: `${name}: could not find the Grid's deployment block (no archive state?): reading from block 0`,
          error,
        });
        return 0;
      }
    },

    /**
     * Delivers the Grid's events to `sink` up to the head (less `confirmations`), range by range,
     * rewinding it first when the chain lost blocks it applied. Returns the events delivered.
     */
    async catchUp(sink: GridSink, p: CatchUpParameters = {}): Promise<number> {
      let total = 0;
      let ranges = 0;
      for (;;) {
        if (p.stopped?.()) return total;
        const head = await getBlock(client, { blockTag: 'latest' });
        p.onHead?.({ number: Number(head.number), timestamp: Number(head.timestamp) });
        const [last] = await sink.recent(1);
        if (last && (last.number > Number(head.number) || (await blockHashAt(last.number)) !== last.hash)) {
          const fork = await forkOf(sink);
          logger.warn({ msg: `${name}: the chain lost blocks applied: rewinding`, fork_block: fork });
          await sink.rewind(fork);
          continue;
        }
        const next = await sink.next();
        const target = Number(head.number) - options.confirmations;
        if (next > target || (p.maxRanges !== undefined && ranges >= p.maxRanges)) return total;
        const to = Math.min(target, next + range - 1);
        const read_ = await read(next, to, last && last.number === next - 1 ? last.hash : undefined);
        if (!read_ || !(await sink.apply(read_))) continue;
        total += read_.events.length;
        ranges += 1;
        if (range < options.maxBlockRange) range = Math.min(options.maxBlockRange, range * 2);
      }
    },
  };
}
