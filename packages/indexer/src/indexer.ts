import { randomBytes } from 'node:crypto';
import { getGridParams, getModel, type ReadClient } from '@aipg/chain';
import { sleep } from '@aipg/core';
import type { Address, Hex } from 'viem';
import { getBlock, getBlockNumber } from 'viem/actions';
import { decodeGridLog, type IndexedEvent } from './events.ts';
import { createGridFollower, type GridRange, type GridSink, pool } from './follower.ts';
import type { Leases, Sql } from './sql.ts';
import { applyEvent, rebuildState } from './state.ts';
import type { NetworkContext } from './types.ts';

const CURSOR = 'grid';
const LEASE = 'network-indexer';

export type IndexerOptions = {
  /** Pause between polls once caught up with the head. */
  pollIntervalMs: number;
  /** Largest `eth_getLogs` range; halved (down to 1) when the RPC refuses a range. */
  maxBlockRange: number;
  /** Blocks behind the head the indexer stays (0 on a local chain: reorgs are detected and undone). */
  confirmations: number;
  /** Block headers kept for reorg detection; a deeper reorg re-indexes from the deployment block. */
  keepBlocks: number;
  /** Parallel RPC reads (block headers, registry snapshots). */
  rpcConcurrency: number;
};

export const defaultIndexerOptions: IndexerOptions = {
  pollIntervalMs: 1_000,
  maxBlockRange: 2_000,
  confirmations: 0,
  keepBlocks: 2_048,
  rpcConcurrency: 8,
};

export type IndexerStatus = {
  /** First block indexed (the deployment block). */
  fromBlock: number | null;
  /** Last block whose events are all stored (`fromBlock - 1` before the first range). */
  indexedBlock: number | null;
  headBlock: number | null;
  /** Unix seconds of the head block (the chain's clock for countdowns). */
  headTimestamp: number | null;
  reorgs: number;
  lastReorgBlock: number | null;
  /**
   * True while this process follows the chain: it holds the indexing lease (always without leases). False
   * on a reader (another replica, or the standalone indexer, follows; this one reads what it stored).
   */
  leader: boolean;
  lastError: string | null;
  lastSyncAt: number | null;
};

export type IndexerProgress =
  | { type: 'indexed'; fromBlock: number; toBlock: number; events: number }
  | { type: 'reorg'; forkBlock: number; removedEvents: number };

/** The decoded columns of `network_events`, in table order: name through args. */
function decodedColumns(e: IndexedEvent) {
  return [
    e.name,
    e.kind,
    e.role,
    e.account?.toLowerCase() ?? null,
    e.related?.toLowerCase() ?? null,
    e.modelId,
    e.batchId?.toString() ?? null,
    e.amount?.toString() ?? null,
    JSON.stringify(e.args),
  ];
}

export type Indexer = ReturnType<typeof createIndexer>;

/**
 * Indexes every log of the Grid Diamond into `network_events`, from the deployment block on, in
 * bounded `eth_getLogs` ranges, and folds them into the state tables in the same transaction as the
 * cursor moves, so a restart resumes exactly where it stopped. Block hashes are kept for the recent
 * blocks it touched; when the chain's hash of the last indexed block differs (a reorg, an
 * `anvil_revert`, a fresh devnet behind the same database) it walks back to the last block both agree
 * on, drops everything after it, rebuilds the state and indexes the new branch.
 * It runs on its own loop: requests only ever read what it stored.
 */
export function createIndexer({
  ctx,
  db,
  client,
  grid,
  chainId,
  deployBlock,
  leases,
  follow = true,
  options,
  onProgress,
}: {
  ctx: NetworkContext;
  db: Sql;
  client: ReadClient;
  grid: Address;
  chainId: number;
  deployBlock: number | undefined;
  leases?: Leases | undefined;
  /**
   * False: never follow the chain here, only read what another process (the standalone indexer, or a
   * gateway that runs one) stores in the same database: status, progress and reorgs from its cursor.
   */
  follow?: boolean | undefined;
  options: IndexerOptions;
  onProgress?: ((p: IndexerProgress) => void) | undefined;
}) {
  const { logger } = ctx;
  const holder = `indexer-${randomBytes(6).toString('hex')}`;
  const status: IndexerStatus = {
    fromBlock: null,
    indexedBlock: null,
    headBlock: null,
    headTimestamp: null,
    reorgs: 0,
    lastReorgBlock: null,
    leader: follow && !leases,
    lastError: null,
    lastSyncAt: null,
  };
  const follower = createGridFollower({ client, grid, logger, name: 'network indexer', options });
  let initialized = false;
  let running: Promise<void> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  const controller = new AbortController();

  const indexedGauge = ctx.metrics.gauge('aipg_gateway_network_indexed_block', 'Last Grid block indexed.');
  const headGauge = ctx.metrics.gauge('aipg_gateway_network_head_block', 'Chain head seen by the indexer.');
  const reorgCounter = ctx.metrics.counter(
    'aipg_gateway_network_reorgs_total',
    'Reorgs the indexer detected and rewound.',
  );
  const eventsCounter = ctx.metrics.counter(
    'aipg_gateway_network_events_total',
    'Grid events indexed, by name.',
  );

  async function readCursor(sql: Sql = db) {
    const rows = await sql.query<Record<string, unknown>>(
      `SELECT chain_id, grid, from_block::text AS from_block, next_block::text AS next_block, reorgs,
         last_reorg_block::text AS last_reorg_block
       FROM network_cursor WHERE id = $1`,
      [CURSOR],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      chainId: Number(r.chain_id),
      grid: String(r.grid),
      fromBlock: Number(r.from_block),
      nextBlock: Number(r.next_block),
      reorgs: Number(r.reorgs),
      lastReorgBlock: r.last_reorg_block == null ? null : Number(r.last_reorg_block),
    };
  }

  async function readRegistryParams(): Promise<Record<string, string>> {
    const p = await getGridParams(client, { grid });
    return {
      workerMinimumBond: String(p.workerMinimumBond),
      validatorMinimumBond: String(p.validatorMinimumBond),
      workerUnbondDelay: String(p.workerUnbondDelay),
      validatorUnbondDelay: String(p.validatorUnbondDelay),
      workerBps: String(p.workerBps),
      validatorBps: String(p.validatorBps),
      protocolBps: String(p.protocolBps),
    };
  }

  /**
   * The Grid's parameters at the head, as the values before any event changed them. A Grid that does not
   * answer (an RPC hiccup; a test double that only emits logs) is retried at the next pass: events still flow.
   */
  let paramsRead = false;
  async function storeRegistryParams(): Promise<void> {
    let params: Record<string, string>;
    try {
      params = await readRegistryParams();
    } catch (error) {
      logger.warn({
        msg: "network indexer: could not read the Grid's parameters; retrying next pass",
        error,
      });
      return;
    }
    await db.transaction(async (tx) => {
      for (const [key, value] of Object.entries(params)) {
        await tx.query(
          `INSERT INTO network_params (key, value, updated_block) VALUES ($1, $2, 0)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value WHERE network_params.updated_block = 0`,
          [key, value],
        );
      }
    });
    paramsRead = true;
  }

  async function init(): Promise<void> {
    const head = await getBlockNumber(client, { cacheTime: 0 });
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(727274003)');
      let cursor = await readCursor(tx);
      if (cursor && (cursor.chainId !== chainId || cursor.grid !== grid.toLowerCase())) {
        logger.warn({
          msg: 'network indexer: the database indexed another Grid: starting over',
          stored_chain_id: cursor.chainId,
          stored_grid: cursor.grid,
          chain_id: chainId,
          grid,
        });
        for (const t of [
          'network_events',
          'network_blocks',
          'network_bonds',
          'network_accounts',
          'network_models',
          'network_params',
          'network_gateway_faults',
          'network_cursor',
        ]) {
          await tx.query(`DELETE FROM ${t}`);
        }
        cursor = undefined;
      }
      if (!cursor) {
        const from = deployBlock ?? (await follower.findDeployBlock(head));
        await tx.query(
          'INSERT INTO network_cursor (id, chain_id, grid, from_block, next_block) VALUES ($1, $2, $3, $4, $4)',
          [CURSOR, chainId, grid.toLowerCase(), from],
        );
        logger.info({ msg: 'network indexer: starting', from_block: from, grid, chain_id: chainId });
      } else {
        logger.info({
          msg: 'network indexer: resuming',
          next_block: cursor.nextBlock,
          grid,
          chain_id: chainId,
        });
      }
    });
    await storeRegistryParams();
    await redecode();
    const cursor = await readCursor();
    if (cursor) {
      status.fromBlock = cursor.fromBlock;
      status.indexedBlock = cursor.nextBlock - 1;
      status.reorgs = cursor.reorgs;
      status.lastReorgBlock = cursor.lastReorgBlock;
    }
    initialized = true;
  }

  /**
   * Decodes again the stored logs an older build could not (`name` null: an event of a facet added later, such
   * as `GatewayFaultReported`) and this build's ABI knows, then rebuilds the state with them. Returns how many.
   */
  async function redecode(): Promise<number> {
    const rows = await db.query<Record<string, unknown>>(
      `SELECT block_number::text AS block_number, log_index, block_hash, tx_hash,
         extract(epoch FROM block_time)::float8 AS t, topics, data
       FROM network_events WHERE name IS NULL ORDER BY block_number, log_index`,
    );
    const known = rows
      .map((r) =>
        decodeGridLog(
          {
            blockNumber: BigInt(r.block_number as string),
            logIndex: Number(r.log_index),
            blockHash: r.block_hash as Hex,
            transactionHash: r.tx_hash as Hex,
            topics: (typeof r.topics === 'string' ? JSON.parse(r.topics) : r.topics) as Hex[],
            data: r.data as Hex,
          },
          Number(r.t),
        ),
      )
      .filter((e) => e.name !== null);
    if (known.length === 0) return 0;
    await pool(
      known.filter((e) => e.name === 'ModelRegistered' && e.modelId),
      options.rpcConcurrency,
      async (e) => {
        e.args.registry = await registrySnapshot(e.modelId!, e.blockNumber);
      },
    );
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(727274003)');
      for (const e of known) {
        await tx.query(
          `UPDATE network_events SET name = $3, kind = $4, role = $5, account = $6, related = $7, model_id = $8,
             batch_id = $9, amount = $10, args = $11::jsonb
           WHERE block_number = $1 AND log_index = $2 AND name IS NULL`,
          [e.blockNumber.toString(), e.logIndex, ...decodedColumns(e)],
        );
      }
      await rebuildState(tx);
    });
    logger.info({ msg: 'network indexer: decoded stored events this build knows', events: known.length });
    return known.length;
  }

  /** Drops everything from `forkBlock` on (the deployment block when null) and rebuilds the state. */
  async function rewind(forkBlock: number | null): Promise<void> {
    const fork = forkBlock ?? status.fromBlock ?? 0;
    const removed = await db.transaction(async (tx) => {
      const gone = await tx.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM network_events WHERE block_number >= $1',
        [fork],
      );
      await tx.query('DELETE FROM network_events WHERE block_number >= $1', [fork]);
      await tx.query('DELETE FROM network_blocks WHERE number >= $1', [fork]);
      await rebuildState(tx);
      await tx.query(
        `UPDATE network_cursor SET next_block = $2, reorgs = reorgs + 1, last_reorg_block = $2, updated_at = now()
         WHERE id = $1`,
        [CURSOR, fork],
      );
      return Number(gone[0]?.n ?? 0);
    });
    status.indexedBlock = fork - 1;
    status.reorgs += 1;
    status.lastReorgBlock = fork;
    reorgCounter.inc();
    logger.warn({ msg: 'network indexer: reorg: rewound', fork_block: fork, removed_events: removed });
    onProgress?.({ type: 'reorg', forkBlock: fork, removedEvents: removed });
  }

  async function registrySnapshot(modelId: Hex, blockNumber: bigint): Promise<Record<string, unknown>> {
    // The rate card as registered (that block); a node without history answers for the head instead.
    const m = await getModel(client, { grid, modelId, blockNumber }).catch(() =>
      getModel(client, { grid, modelId }),
    );
    return {
      rates: {
        inputPerMTokens: m.rates.inputPerMTokens.toString(),
        outputPerMTokens: m.rates.outputPerMTokens.toString(),
        perMegapixelStep: m.rates.perMegapixelStep.toString(),
      },
      parameterCount: m.parameterCount.toString(),
      minVramMb: Number(m.minVramMb),
    };
  }

  /** Stores one range: its events, the state they fold into, its headers and the cursor, in one transaction. */
  async function apply({ fromBlock: next, toBlock: to, events, blocks }: GridRange): Promise<boolean> {
    await pool(
      events.filter((e) => e.name === 'ModelRegistered' && e.modelId),
      options.rpcConcurrency,
      async (e) => {
        e.args.registry = await registrySnapshot(e.modelId!, e.blockNumber);
      },
    );
    const stored = await db.transaction(async (tx) => {
      const cursor = await tx.query<{ next: string }>(
        'SELECT next_block::text AS next FROM network_cursor WHERE id = $1 FOR UPDATE',
        [CURSOR],
      );
      if (Number(cursor[0]?.next) !== next) return false;
      for (const e of events) {
        await tx.query(
          `INSERT INTO network_events (block_number, log_index, block_hash, tx_hash, block_time, name, kind, role, account,
             related, model_id, batch_id, amount, args, topics, data)
           VALUES ($1, $2, $3, $4, to_timestamp($5), $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15::jsonb, $16)
           ON CONFLICT (block_number, log_index) DO NOTHING`,
          [
            e.blockNumber.toString(),
            e.logIndex,
            e.blockHash,
            e.txHash,
            e.blockTime,
            ...decodedColumns(e),
            JSON.stringify(e.topics),
            e.data,
          ],
        );
        if (e.name) await applyEvent(tx, e);
      }
      for (const [n, h] of blocks) {
        await tx.query(
          `INSERT INTO network_blocks (number, hash, parent_hash, timestamp) VALUES ($1, $2, $3, $4)
           ON CONFLICT (number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash,
             timestamp = EXCLUDED.timestamp`,
          [n, h.hash, h.parentHash, h.timestamp],
        );
      }
      await tx.query('DELETE FROM network_blocks WHERE number < $1', [to - options.keepBlocks]);
      await tx.query('UPDATE network_cursor SET next_block = $2, updated_at = now() WHERE id = $1', [
        CURSOR,
        to + 1,
      ]);
      return true;
    });
    if (!stored) return false;
    for (const e of events) eventsCounter.inc({ event: e.name ?? 'unknown' });
    status.indexedBlock = to;
    indexedGauge.set(undefined, to);
    onProgress?.({ type: 'indexed', fromBlock: next, toBlock: to, events: events.length });
    return true;
  }

  /** The network tables, as the follower's sink. */
  const sink: GridSink = {
    async next() {
      const cursor = await readCursor();
      if (!cursor) throw new Error('network cursor missing');
      status.indexedBlock = cursor.nextBlock - 1;
      indexedGauge.set(undefined, status.indexedBlock);
      return cursor.nextBlock;
    },
    async recent(limit) {
      const rows = await db.query<{ number: string; hash: Hex }>(
        // By the column, not the text alias: as text, block 9 sorts after block 10.
        'SELECT number::text AS number, hash FROM network_blocks ORDER BY network_blocks.number DESC LIMIT $1',
        [limit],
      );
      return rows.map((r) => ({ number: Number(r.number), hash: r.hash }));
    },
    apply,
    rewind,
  };

  /**
   * What the process that follows the chain stored (its cursor), for a process that does not: the status,
   * and the progress the feed and the response cache wait on. Returns the events it stored since the last look.
   */
  let observed: { nextBlock: number; reorgs: number } | undefined;
  async function observe(): Promise<number> {
    const head = await getBlock(client, { blockTag: 'latest' });
    status.headBlock = Number(head.number);
    status.headTimestamp = Number(head.timestamp);
    headGauge.set(undefined, status.headBlock);
    const cursor = await readCursor();
    if (!cursor || cursor.chainId !== chainId || cursor.grid !== grid.toLowerCase()) return 0;
    status.fromBlock = cursor.fromBlock;
    status.indexedBlock = cursor.nextBlock - 1;
    status.reorgs = cursor.reorgs;
    status.lastReorgBlock = cursor.lastReorgBlock;
    indexedGauge.set(undefined, status.indexedBlock);
    status.lastSyncAt = Date.now();
    const before = observed;
    observed = { nextBlock: cursor.nextBlock, reorgs: cursor.reorgs };
    if (!before) return 0;
    if (cursor.reorgs !== before.reorgs || cursor.nextBlock < before.nextBlock) {
      onProgress?.({ type: 'reorg', forkBlock: cursor.lastReorgBlock ?? cursor.fromBlock, removedEvents: 0 });
      return 0;
    }
    if (cursor.nextBlock === before.nextBlock) return 0;
    const rows = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM network_events WHERE block_number >= $1 AND block_number < $2',
      [before.nextBlock, cursor.nextBlock],
    );
    const events = Number(rows[0]?.n ?? 0);
    onProgress?.({ type: 'indexed', fromBlock: before.nextBlock, toBlock: cursor.nextBlock - 1, events });
    return events;
  }

  /** Indexes up to the head (minus confirmations). Returns the events stored. */
  async function catchUp(): Promise<number> {
    if (!follow) return observe();
    if (!initialized) await init();
    if (leases) {
      status.leader = await leases.acquire(LEASE, holder, Math.max(30_000, options.pollIntervalMs * 10));
      if (!status.leader) return observe();
    }
    if (!paramsRead) await storeRegistryParams();
    const total = await follower.catchUp(sink, {
      stopped: () => stopped,
      onHead: (head) => {
        status.headBlock = head.number;
        status.headTimestamp = head.timestamp;
        headGauge.set(undefined, head.number);
      },
    });
    if (!stopped) status.lastSyncAt = Date.now();
    observed = undefined;
    return total;
  }

  /** One pass, never two at once (the loop and a test's `syncNow` share it). */
  function sync(): Promise<void> {
    running ??= (async () => {
      try {
        await catchUp();
        status.lastError = null;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  let failures = 0;
  async function loop() {
    while (!stopped) {
      try {
        await sync();
        failures = 0;
      } catch (error) {
        failures += 1;
        status.lastError = error instanceof Error ? error.message.split('\n')[0]! : String(error);
        logger.warn({ msg: 'network indexer: pass failed; retrying', attempt: failures, error });
      }
      const delay =
        failures === 0 ? options.pollIntervalMs : Math.min(30_000, options.pollIntervalMs * 2 ** failures);
      await new Promise<void>((resolve) => {
        wake = resolve;
        void sleep(delay, controller.signal).then(resolve);
      });
      wake = undefined;
    }
  }

  let looping: Promise<void> | undefined;

  return {
    status: (): IndexerStatus => ({ ...status }),
    /** Starts the polling loop (idempotent). */
    start() {
      stopped = false;
      looping ??= loop();
    },
    /** Indexes up to the head now and resolves when done (tests and tools). */
    async syncNow(): Promise<void> {
      await running?.catch(() => {});
      await sync();
    },
    /** Polls early (a transaction of ours was just mined). */
    poke() {
      wake?.();
    },
    async stop(): Promise<void> {
      stopped = true;
      controller.abort();
      wake?.();
      await looping;
      await running?.catch(() => {});
      if (leases && status.leader) await leases.release(LEASE, holder).catch(() => {});
    },
  };
}
