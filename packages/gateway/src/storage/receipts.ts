import type { Receipt } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { Sql } from './db.ts';

export type StoredReceipt = {
  receipt: Receipt;
  signature: Hex;
  signer: Address;
  leafHash: Hex;
  seq: bigint;
  batchId: number | null;
  settled: boolean;
  excluded: string | null;
};

export type BatchStatus = 'pending' | 'settled' | 'failed';

export type BatchRecord = {
  id: number;
  root: Hex;
  /** Receipts (leaves) under `root`. */
  receiptCount: number;
  /** The settling gateway (null for batches recorded before receipt numbers). */
  gateway: Address | null;
  /** The range of receipt numbers the batch settles: `[firstSeq, firstSeq + seqCount)` (null before numbers). */
  firstSeq: bigint | null;
  seqCount: bigint | null;
  total: bigint;
  status: BatchStatus;
  /** The Grid's id of the batch (`BatchSettled.batchId`), once known. */
  chainBatchId: bigint | null;
  txHash: Hex | null;
  settledBlock: bigint | null;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  settledAt: Date | null;
};

const RECEIPT_COLUMNS = `job_id, seq::text AS seq, gateway, payer, worker, model_id, request_hash, output_hash,
  input_units::text AS input_units, output_units::text AS output_units, fee::text AS fee, completed_at::text AS completed_at,
  confidential, signature, signer, leaf_hash, batch_id, settled, excluded`;

const BATCH_COLUMNS = `id, root, receipt_count, gateway, first_seq::text AS first_seq, seq_count::text AS seq_count,
  total::text AS total, status, chain_batch_id::text AS chain_batch_id, tx_hash,
  settled_block::text AS settled_block, attempts, last_error, created_at, settled_at`;

function toReceipt(r: Record<string, unknown>): StoredReceipt {
  return {
    receipt: {
      jobId: r.job_id as Hex,
      gateway: r.gateway as Address,
      payer: r.payer as Address,
      worker: r.worker as Address,
      modelId: r.model_id as Hex,
      requestHash: r.request_hash as Hex,
      outputHash: r.output_hash as Hex,
      inputUnits: BigInt(r.input_units as string),
      outputUnits: BigInt(r.output_units as string),
      fee: BigInt(r.fee as string),
      completedAt: BigInt(r.completed_at as string),
      confidential: Boolean(r.confidential),
      seq: BigInt(r.seq as string),
    },
    signature: r.signature as Hex,
    signer: r.signer as Address,
    leafHash: r.leaf_hash as Hex,
    seq: BigInt(r.seq as string),
    batchId: r.batch_id == null ? null : Number(r.batch_id),
    settled: Boolean(r.settled),
    excluded: (r.excluded as string | null) ?? null,
  };
}

function toBatch(r: Record<string, unknown>): BatchRecord {
  return {
    id: Number(r.id),
    root: r.root as Hex,
    receiptCount: Number(r.receipt_count),
    gateway: (r.gateway as Address | null) ?? null,
    firstSeq: r.first_seq == null ? null : BigInt(r.first_seq as string),
    seqCount: r.seq_count == null ? null : BigInt(r.seq_count as string),
    total: BigInt(r.total as string),
    status: r.status as BatchStatus,
    chainBatchId: r.chain_batch_id == null ? null : BigInt(r.chain_batch_id as string),
    txHash: (r.tx_hash as Hex | null) ?? null,
    settledBlock: r.settled_block == null ? null : BigInt(r.settled_block as string),
    attempts: Number(r.attempts),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: new Date(r.created_at as string),
    settledAt: r.settled_at == null ? null : new Date(r.settled_at as string),
  };
}

/**
 * What a batch records: its Merkle root and what it pays. Not its tree: the receipts of its range, in number
 * order, rebuild it exactly (resuming a batch and the audit's proofs do, and check the root).
 */
export type NewBatch = { root: Hex; total: bigint };

/** Most receipt numbers one batch can cover (`settle`'s `receiptCount` is a uint32). */
export const MAX_BATCH_RANGE = 2n ** 32n - 1n;

/**
 * SQL: the last range of receipt numbers of gateway `$1` settled from this database (its `first_seq` and
 * `first_seq + seq_count`; 0 when none). A batch covers every receipt stored in its range, and a number
 * that comes back later is refused, so no receipt below its end ever waits to be batched. Batches are
 * recorded in number order (each starts where the chain's settled ranges end), so the last settled one
 * by id is the highest: found from the newest id down, past at most the few pending or failed since,
 * never a scan of every batch ever recorded.
 */
const lastSettled = (column: 'first_seq' | 'first_seq + seq_count') =>
  `SELECT COALESCE((SELECT ${column} FROM batches
     WHERE status = 'settled' AND gateway = $1 AND first_seq IS NOT NULL ORDER BY id DESC LIMIT 1), 0)`;
const SETTLED_END = lastSettled('first_seq + seq_count');
const SETTLED_START = lastSettled('first_seq');

export function createReceiptStore(db: Sql) {
  return {
    async getByJob(jobId: string): Promise<StoredReceipt | undefined> {
      const rows = await db.query(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE job_id = $1`, [jobId]);
      return rows[0] ? toReceipt(rows[0]) : undefined;
    },
    async listByBatch(batchId: number, sql: Sql = db): Promise<StoredReceipt[]> {
      const rows = await sql.query(
        `SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE batch_id = $1 ORDER BY seq`,
        [batchId],
      );
      return rows.map(toReceipt);
    },
    /** Fees of this payer's receipts not yet settled on chain (whatever batch they sit in). */
    async unsettledSpend(payer: Address, sql: Sql = db): Promise<bigint> {
      const rows = await sql.query<{ s: string }>(
        'SELECT COALESCE(SUM(fee), 0)::text AS s FROM receipts WHERE payer = $1 AND settled = false',
        [payer],
      );
      return BigInt(rows[0]?.s ?? '0');
    },
    /**
     * Receipts waiting for a batch, and those in a batch not yet settled (settlement's loop and the
     * metrics ask every second or scrape). Work bounded by what waits, never by history: unbatched
     * receipts are counted from the end of the last settled range up (`SETTLED_END`: everything below
     * it was settled or held out), so the index entries every batched receipt left behind (until a
     * vacuum) are not walked.
     */
    async countWaiting(gateway: Address): Promise<{ unbatched: number; unsettled: number }> {
      const rows = await db.query<{ unbatched: number; pending: number }>(
        `SELECT (SELECT count(*)::int FROM receipts
                 WHERE batch_id IS NULL AND excluded IS NULL AND settled = false
                   AND gateway = $1 AND seq >= (${SETTLED_END})) AS unbatched,
                (SELECT COALESCE(sum(receipt_count), 0)::int FROM batches
                 WHERE status = 'pending' AND gateway = $1) AS pending`,
        [gateway],
      );
      const unbatched = Number(rows[0]?.unbatched ?? 0);
      return { unbatched, unsettled: unbatched + Number(rows[0]?.pending ?? 0) };
    },
    /**
     * Records the next batch of `gateway` as `pending`, in one transaction: the range of receipt numbers
     * `[from, end)`, `from` being the chain's `nextReceiptSeq`, and `end` the lowest number still in flight
     * (or the next one not handed out), shortened so that at most `max` receipts fall in it. The batch holds
     * every stored receipt in the range, in number order; numbers of jobs that ended without a receipt are
     * in the range with no leaf. `build` computes root, total and tree; it returns undefined for a batch
     * that must not be sent (a zero total). Undefined too when nothing waits in the range, or while another
     * batch is pending (a range is sent once: resume that one first).
     *
     * The counter row is locked first, so no number is handed out meanwhile; a number still `inflight` past
     * its expiry inside the range is marked `abandoned` (its late receipt will be refused), and unbatched
     * receipts below `from` (a range the chain settled without them) are held out.
     */
    async createBatch(
      p: { gateway: Address; from: bigint; max: number },
      build: (receipts: StoredReceipt[]) => NewBatch | undefined,
    ): Promise<{ batch: BatchRecord; receipts: StoredReceipt[] } | undefined> {
      return db.transaction(async (tx) => {
        const counter = await tx.query<{ next_seq: string }>(
          `UPDATE receipt_counters SET next_seq = GREATEST(next_seq, $2::numeric) WHERE gateway = $1
           RETURNING next_seq::text AS next_seq`,
          [p.gateway, p.from.toString()],
        );
        if (!counter[0]) return undefined;
        const pending = await tx.query(`SELECT id FROM batches WHERE status = 'pending' LIMIT 1`);
        if (pending.length > 0) return undefined;
        const from = p.from.toString();
        // Only from the end of the last range settled here: below it, all was settled or held out before.
        await tx.query(
          `UPDATE receipts SET excluded = 'below the Grid''s next receipt number: its range was settled without it'
           WHERE gateway = $1 AND seq < $2 AND settled = false AND batch_id IS NULL AND excluded IS NULL
             AND seq >= (${SETTLED_END})`,
          [p.gateway, from],
        );
        // Numbers below the chain's frontier are settled (or given up) for good: their dispatch rows are
        // no longer needed, so the table holds only the unsettled numbers (the counter row keeps the floor).
        // From where the last settled range starts: the pass that recorded it deleted everything below.
        await tx.query(
          `DELETE FROM dispatches WHERE gateway = $1 AND seq < $2 AND seq >= (${SETTLED_START})`,
          [p.gateway, from],
        );
        const inflight = await tx.query<{ seq: string | null }>(
          `SELECT min(seq)::text AS seq FROM dispatches
           WHERE gateway = $1 AND status = 'inflight' AND expires_at > now() AND seq >= $2`,
          [p.gateway, from],
        );
        let end = inflight[0]?.seq != null ? BigInt(inflight[0].seq) : BigInt(counter[0].next_seq);
        if (end - p.from > MAX_BATCH_RANGE) end = p.from + MAX_BATCH_RANGE;
        if (end <= p.from) return undefined;
        await tx.query(
          `UPDATE dispatches SET status = 'abandoned', updated_at = now()
           WHERE gateway = $1 AND status = 'inflight' AND seq >= $2 AND seq < $3`,
          [p.gateway, from, end.toString()],
        );
        const rows = await tx.query(
          `SELECT ${RECEIPT_COLUMNS} FROM receipts
           WHERE gateway = $1 AND seq >= $2 AND seq < $3 AND batch_id IS NULL AND excluded IS NULL
           ORDER BY seq LIMIT $4`,
          [p.gateway, from, end.toString(), p.max + 1],
        );
        const all = rows.map(toReceipt);
        if (all.length > p.max) end = all[p.max]!.seq;
        const receipts = all.slice(0, p.max);
        if (receipts.length === 0) return undefined;
        const b = build(receipts);
        if (!b) return undefined;
        const inserted = await tx.query(
          `INSERT INTO batches (root, receipt_count, total, status, gateway, first_seq, seq_count)
           VALUES ($1, $2, $3, 'pending', $4, $5, $6)
           RETURNING ${BATCH_COLUMNS}`,
          [b.root, receipts.length, b.total.toString(), p.gateway, from, (end - p.from).toString()],
        );
        const batch = toBatch(inserted[0]!);
        await tx.query(`UPDATE receipts SET batch_id = $1 WHERE job_id = ANY($2::text[])`, [
          batch.id,
          receipts.map((r) => r.receipt.jobId),
        ]);
        return { batch, receipts: receipts.map((r) => ({ ...r, batchId: batch.id })) };
      });
    },
    async getBatch(id: number): Promise<BatchRecord | undefined> {
      const rows = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches WHERE id = $1`, [id]);
      return rows[0] ? toBatch(rows[0]) : undefined;
    },
    /** The batch with this Merkle root (any letter case). */
    async getBatchByRoot(root: Hex): Promise<BatchRecord | undefined> {
      const rows = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches WHERE lower(root) = lower($1)`, [
        root,
      ]);
      return rows[0] ? toBatch(rows[0]) : undefined;
    },
    /** Records the Grid's id of a settled batch (learned after the fact). */
    async setChainBatchId(id: number, chainBatchId: bigint, settledBlock: bigint | null): Promise<void> {
      await db.query(
        `UPDATE batches SET chain_batch_id = $2, settled_block = COALESCE(settled_block, $3), updated_at = now()
         WHERE id = $1`,
        [id, chainBatchId.toString(), settledBlock == null ? null : settledBlock.toString()],
      );
    },
    async pendingBatches(): Promise<BatchRecord[]> {
      const rows = await db.query(
        `SELECT ${BATCH_COLUMNS} FROM batches WHERE status = 'pending' ORDER BY id`,
      );
      return rows.map(toBatch);
    },
    async listBatches(limit: number): Promise<BatchRecord[]> {
      const rows = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches ORDER BY id DESC LIMIT $1`, [limit]);
      return rows.map(toBatch);
    },
    async batchSent(id: number, txHash: Hex): Promise<void> {
      await db.query(
        'UPDATE batches SET tx_hash = $2, attempts = attempts + 1, updated_at = now() WHERE id = $1',
        [id, txHash],
      );
    },
    async batchError(id: number, error: string): Promise<void> {
      await db.query('UPDATE batches SET last_error = $2, updated_at = now() WHERE id = $1', [
        id,
        error.slice(0, 2000),
      ]);
    },
    /** The batch's root is settled on chain: the batch and its receipts are final. */
    async batchSettled(
      id: number,
      r: { txHash: Hex | null; block: bigint | null; chainBatchId?: bigint | null | undefined },
    ): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.query(
          `UPDATE batches SET status = 'settled', tx_hash = COALESCE($2, tx_hash), settled_block = $3, settled_at = now(),
             chain_batch_id = COALESCE($4, chain_batch_id), last_error = NULL, updated_at = now() WHERE id = $1`,
          [
            id,
            r.txHash,
            r.block == null ? null : r.block.toString(),
            r.chainBatchId == null ? null : r.chainBatchId.toString(),
          ],
        );
        await tx.query('UPDATE receipts SET settled = true WHERE batch_id = $1', [id]);
      });
    },
    /**
     * The batch can never settle (the contract refused it): its receipts go back to the pool, except
     * those of the payers / workers it named, which are held out with `reason` until someone looks.
     */
    async batchFailed(
      id: number,
      f: { error: string; excludePayers: Address[]; excludeWorkers: Address[]; reason: string },
    ): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.query(
          `UPDATE batches SET status = 'failed', last_error = $2, updated_at = now() WHERE id = $1`,
          [id, f.error.slice(0, 2000)],
        );
        await tx.query(
          `UPDATE receipts SET excluded = $4 WHERE batch_id = $1 AND (payer = ANY($2::text[]) OR worker = ANY($3::text[]))`,
          [id, f.excludePayers, f.excludeWorkers, f.reason],
        );
        await tx.query('UPDATE receipts SET batch_id = NULL WHERE batch_id = $1', [id]);
      });
    },
  };
}

export type ReceiptStore = ReturnType<typeof createReceiptStore>;
