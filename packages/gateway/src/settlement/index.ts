import { randomBytes } from 'node:crypto';
import { ChainError, toChainError } from '@aipg/chain';
import { buildReceiptTree, type ReceiptTree } from '@aipg/core';
import type { Address } from 'viem';
import type { Chain } from '../chain/index.ts';
import { type Common, sleep } from '../common.ts';
import type { BatchRecord, Storage, StoredReceipt } from '../storage/index.ts';

const LEASE = 'settlement';

/** Reverts that will never succeed for this batch, and whom they blame. */
const PERMANENT = new Set([
  'InsufficientDeposit',
  'GatewayCapExceeded',
  'UnknownWorker',
  'SumMismatch',
  'EmptyBatch',
  'ZeroRoot',
]);

export type Settlement = ReturnType<typeof createSettlement>;

/** Per-payer debits and per-worker gross of a set of receipts (sorted for a stable transaction). */
export function aggregate(receipts: readonly StoredReceipt[]) {
  const debits = new Map<Address, bigint>();
  const credits = new Map<Address, bigint>();
  for (const { receipt: r } of receipts) {
    debits.set(r.payer, (debits.get(r.payer) ?? 0n) + r.fee);
    credits.set(r.worker, (credits.get(r.worker) ?? 0n) + r.fee);
  }
  const byKey = <T>(a: [string, T], b: [string, T]) => (a[0].toLowerCase() < b[0].toLowerCase() ? -1 : 1);
  // Zero entries move nothing: left out (a zero credit to a worker who has since unbonded would revert).
  return {
    debits: [...debits]
      .filter(([, amount]) => amount > 0n)
      .sort(byKey)
      .map(([payer, amount]) => ({ payer, amount })),
    credits: [...credits]
      .filter(([, gross]) => gross > 0n)
      .sort(byKey)
      .map(([worker, gross]) => ({ worker, gross })),
    total: [...debits.values()].reduce((a, b) => a + b, 0n),
  };
}

/**
 * The settlement loop. Every `settlement.intervalMs`, or as soon as `settlement.minReceipts` wait, it
 * reads the gateway's `nextReceiptSeq` from the chain and records the next batch in the database as
 * `pending` BEFORE the transaction is sent: the contiguous range of receipt numbers from there up to the
 * lowest number still in flight (at most `maxBatchSize` receipts), its Merkle root over the receipts in
 * it sorted by number. Then it calls `settle(root, firstSeq, rangeLength, …)` as the gateway.
 *
 * The chain is the truth about what is settled. A pending batch is resumed first (after a crash too):
 * its root already settled on chain → marked settled; its range no longer starting at `nextReceiptSeq`
 * (`SequenceMismatch`, or found so before sending) → the range was settled by something this database did
 * not record, so the batch is given up and the next one starts where the chain says, never sending a number
 * twice. RPC failures are retried with backoff; a revert that can never pass fails the batch and holds out
 * the receipts of the payer or worker it names (a later batch's range covers their numbers without them).
 * A batch whose total is 0 is never sent. Only one replica settles at a time (a database lease), and one
 * batch is pending at a time.
 */
export function createSettlement({
  common,
  storage,
  chain,
}: {
  common: Common;
  storage: Storage;
  chain: Chain;
}) {
  const { options, logger, metrics, shutdown } = common;
  const holder = `settle-${randomBytes(6).toString('hex')}`;
  const s = options.settlement;
  let timer: NodeJS.Timeout | undefined;
  let lastBatchAt = 0;
  let failures = 0;
  let nextAttemptAt = 0;
  let current: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  /**
   * Sends one recorded batch. `prebuilt`: the tree of exactly these receipts when the caller just built
   * it (a batch it recorded); otherwise (a batch resumed from the database) it is rebuilt here.
   */
  async function send(
    batch: BatchRecord,
    receipts: readonly StoredReceipt[],
    prebuilt?: ReceiptTree,
  ): Promise<'settled' | 'failed' | 'retry'> {
    const log = logger.child({
      batch_id: batch.id,
      root: batch.root,
      receipts: receipts.length,
      first_seq: batch.firstSeq?.toString(),
      seq_count: batch.seqCount?.toString(),
    });
    const foundSettled = async (): Promise<'settled'> => {
      // Sent before a crash (or by another replica): it is final. Nothing to send.
      await storage.receipts.batchSettled(batch.id, { txHash: null, block: null });
      chain.invalidatePayers(receipts.map((r) => r.receipt.payer));
      metrics.batches.inc({ status: 'settled' });
      metrics.batchReceipts.inc(undefined, receipts.length);
      log.info({ msg: 'batch found settled on chain' });
      return 'settled';
    };
    /** The chain's next number moved past this batch's start without its root: give it up, start over there. */
    const superseded = async (expected: bigint, error: string): Promise<'failed'> => {
      await storage.receipts.batchFailed(batch.id, {
        error,
        excludePayers: [],
        excludeWorkers: [],
        reason: '',
      });
      metrics.batches.inc({ status: 'failed' });
      metrics.settlementErrors.inc({ kind: 'SequenceMismatch' });
      log.warn({
        msg: "batch range no longer starts at the Grid's next receipt number: reconciled, not resent",
        next_receipt_seq: expected.toString(),
      });
      return 'failed';
    };
    if (await chain.isSettled(batch.root)) return foundSettled();
    if (batch.firstSeq === null || batch.seqCount === null || batch.seqCount === 0n) {
      return superseded(-1n, 'batch recorded without a receipt-number range');
    }
    const next = await chain.nextReceiptSeq();
    if (next !== batch.firstSeq) return superseded(next, `SequenceMismatch: the Grid expects ${next}`);
    const tree = prebuilt ?? buildReceiptTree(receipts.map((r) => r.receipt));
    if (tree.root !== batch.root) {
      // Cannot happen unless the database was edited: refuse to settle something else than recorded.
      log.error({ msg: 'batch receipts no longer match the recorded root', rebuilt: tree.root });
      await storage.receipts.batchFailed(batch.id, {
        error: 'root mismatch',
        excludePayers: [],
        excludeWorkers: [],
        reason: '',
      });
      return 'failed';
    }
    const { debits, credits } = aggregate(receipts);
    try {
      const res = await chain.settle({
        root: batch.root,
        firstSeq: batch.firstSeq,
        receiptCount: Number(batch.seqCount),
        debits,
        credits,
      });
      await storage.receipts.batchSettled(batch.id, {
        txHash: res.hash,
        block: res.blockNumber,
        // The Grid's batch id (from `BatchSettled`): validators attest under it.
        chainBatchId: res.batchId > 0n ? res.batchId : null,
      });
      chain.invalidatePayers(debits.map((d) => d.payer));
      metrics.batches.inc({ status: 'settled' });
      metrics.batchReceipts.inc(undefined, receipts.length);
      log.info({
        msg: 'batch settled',
        tx: res.hash,
        block: res.blockNumber.toString(),
        batch: res.batchId.toString(),
      });
      return 'settled';
    } catch (error) {
      const e = error instanceof ChainError ? error : toChainError(error, 'settle');
      await storage.receipts.batchError(batch.id, e.message);
      if (e.errorName === 'BatchAlreadySettled') return foundSettled();
      if (e.errorName === 'SequenceMismatch') {
        // Reconcile, never retry blindly: re-read the chain (the root may have landed after all).
        if (await chain.isSettled(batch.root)) return foundSettled();
        return superseded(await chain.nextReceiptSeq(), e.message);
      }
      if (e.code === 'CONTRACT_REVERT' && e.errorName && PERMANENT.has(e.errorName)) {
        const blamedPayer = e.args?.payer as Address | undefined;
        const blamedWorker = e.args?.worker as Address | undefined;
        await storage.receipts.batchFailed(batch.id, {
          error: e.message,
          excludePayers: blamedPayer ? [blamedPayer] : [],
          excludeWorkers: blamedWorker ? [blamedWorker] : [],
          reason: e.message,
        });
        metrics.batches.inc({ status: 'failed' });
        metrics.settlementErrors.inc({ kind: e.errorName });
        log.error({
          msg: 'batch can never settle: held out what it blamed, the rest goes to the next batch',
          error: e.message,
          payer: blamedPayer,
          worker: blamedWorker,
        });
        // Nobody to hold out: the same receipts would fail the same way, so back off instead of looping.
        return blamedPayer || blamedWorker ? 'failed' : 'retry';
      }
      metrics.settlementErrors.inc({ kind: e.code });
      log.warn({ msg: 'settle failed; will retry', code: e.code, error: e.message });
      return 'retry';
    }
  }

  /** One pass: resume pending batches, then batch and send what waits. */
  async function runOnce(force: boolean): Promise<void> {
    if (!(await storage.leases.acquire(LEASE, holder, Math.max(60_000, s.intervalMs * 4)))) return;
    for (const batch of await storage.receipts.pendingBatches()) {
      const receipts = await storage.receipts.listByBatch(batch.id);
      const r = await send(batch, receipts);
      if (r === 'retry') throw new Error('pending batch not settled yet');
    }
    const gateway = chain.gateway;
    for (;;) {
      const { unbatched: waiting, unsettled } = await storage.receipts.countWaiting(gateway);
      metrics.unsettledReceipts.set(undefined, unsettled);
      if (waiting === 0) return;
      const due = force || waiting >= s.minReceipts || Date.now() - lastBatchAt >= s.intervalMs;
      if (!due) return;
      // Re-read every pass: the chain, not this database, says where the next batch starts.
      const from = await chain.nextReceiptSeq();
      // The tree built for the record, and the receipts it was built from: `send` reuses it.
      const built: { tree?: ReceiptTree; receipts?: readonly StoredReceipt[] } = {};
      const created = await storage.receipts.createBatch(
        { gateway, from, max: s.maxBatchSize },
        (receipts) => {
          const total = aggregate(receipts).total;
          // The contract refuses a batch that pays nothing (EmptyBatch): it waits for a paying receipt.
          if (total === 0n) return undefined;
          const tree = buildReceiptTree(receipts.map((r) => r.receipt));
          built.tree = tree;
          built.receipts = receipts;
          return { root: tree.root, total };
        },
      );
      if (!created) return;
      lastBatchAt = Date.now();
      logger.info({
        msg: 'batch recorded',
        batch_id: created.batch.id,
        root: created.batch.root,
        receipts: created.receipts.length,
        first_seq: from.toString(),
        seq_count: created.batch.seqCount?.toString(),
      });
      // Built once per batch: reused when the batch holds the very receipts (same objects) it was built from.
      const same =
        built.tree !== undefined &&
        built.receipts?.length === created.receipts.length &&
        created.receipts.every((r, i) => r.receipt === built.receipts?.[i]?.receipt);
      const r = await send(created.batch, created.receipts, same ? built.tree : undefined);
      if (r === 'retry') throw new Error('batch not settled yet');
      if (waiting <= s.maxBatchSize && r === 'settled') return;
    }
  }

  /** Receipts stored by this process since the last early wake-up. */
  let stored = 0;

  function tick(force = false): Promise<void> {
    // A forced pass must not be satisfied by a routine pass already running: queue it behind.
    if (current) return force ? current.then(() => tick(true)) : current;
    current = (async () => {
      if (!force && Date.now() < nextAttemptAt) return;
      try {
        await runOnce(force);
        failures = 0;
        nextAttemptAt = 0;
      } catch (error) {
        failures += 1;
        const delay = Math.min(60_000, s.retryBaseMs * 2 ** Math.min(failures - 1, 16));
        nextAttemptAt = Date.now() + delay;
        logger.warn({
          msg: 'settlement pass failed',
          attempt: failures,
          retry_in_ms: delay,
          error: error instanceof Error ? error.message : error,
        });
      }
    })().finally(() => {
      current = undefined;
    });
    return current;
  }

  return {
    /** Starts the loop: a pass at once (resuming pending batches), then on every tick. */
    start() {
      if (!s.enabled) return;
      lastBatchAt = Date.now();
      void tick(true);
      const loop = async () => {
        while (!shutdown.isShuttingDown()) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, Math.min(1_000, s.intervalMs));
            timer.unref();
          });
          wake = undefined;
          if (shutdown.isShuttingDown()) break;
          await tick();
        }
      };
      void loop();
    },
    /**
     * A receipt was stored: settle early once enough have come since the last pass (counted here, so a
     * receipt costs no database work; the loop's own tick still looks every second).
     */
    notify() {
      stored += 1;
      if (stored >= s.minReceipts) {
        stored = 0;
        wake?.();
      }
    },
    /** Settles everything waiting now (tests, shutdown flush). */
    flush(): Promise<void> {
      return tick(true);
    },
    /** Stops the loop; one last pass sends what waits (bounded), then the lease is released. */
    async stop(timeoutMs: number): Promise<void> {
      clearTimeout(timer);
      wake?.();
      if (!s.enabled) return;
      await Promise.race([current, sleep(timeoutMs)]);
      nextAttemptAt = 0;
      await Promise.race([tick(true), sleep(timeoutMs)]);
      await storage.leases.release(LEASE, holder).catch(() => {});
    },
    holder,
  };
}
