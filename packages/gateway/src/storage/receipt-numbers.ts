import type { Address, Hex } from 'viem';
import type { BatchOp, Database, Sql } from './db.ts';

/** Receipt numbers are uint64 on chain; the counter refuses to go past that. */
export const MAX_RECEIPT_SEQ = 2n ** 64n - 1n;

export type DispatchStatus = 'inflight' | 'receipted' | 'failed' | 'abandoned';

/**
 * The gateway's receipt numbers (`Receipt.seq`): one counter row per gateway address, and one
 * `dispatches` row per number handed out. A number is taken in the same transaction that records its
 * dispatch, so it is never handed out twice, across restarts and replicas alike (the counter row is
 * locked until the transaction commits). A number whose job ends without a receipt stays used: the
 * batch range that covers it simply has no leaf for it.
 *
 * Dispatch states: `inflight` until the worker's receipt is stored (`receipted`) or the attempt ends
 * without one (`failed`); settlement marks an `inflight` number whose time ran out `abandoned` when a
 * batch range passes it, and a receipt arriving after that is refused (its number is settled without it).
 */
type Dispatch = { gateway: Address; jobId: Hex; worker: Address; expiresAt: Date };

/** Numbers for many dispatches of one gateway, consecutive in the order given: one statement. */
async function assignRun(sql: Sql, gateway: Address, items: readonly Dispatch[]): Promise<bigint[]> {
  const rows = items.length === 1 ? await assignOne(sql, items[0]!) : await assignMany(sql, gateway, items);
  if (rows.length !== items.length) {
    const known = await sql.query('SELECT 1 FROM receipt_counters WHERE gateway = $1', [gateway]);
    if (known.length === 0) throw new Error(`receipt numbering of gateway ${gateway} was not initialised`);
    throw new RangeError('receipt numbers exhausted (uint64)');
  }
  // Item n (1-based) got `first + n - 1`: ascending numbers are the items in order.
  return rows.map((r) => BigInt(r.seq)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One dispatch (plain parameters: cheaper to plan than the batch's JSON for a lone request). */
function assignOne(sql: Sql, d: Dispatch): Promise<{ seq: string }[]> {
  return sql.query<{ seq: string }>(
    `WITH c AS (
       UPDATE receipt_counters SET next_seq = next_seq + 1, updated_at = now()
       WHERE gateway = $1 AND next_seq <= $5::numeric RETURNING next_seq - 1 AS seq
     ), d AS (
       INSERT INTO dispatches (gateway, seq, job_id, worker, status, expires_at)
       SELECT $1, seq, $2, $3, 'inflight', $4 FROM c RETURNING seq
     )
     SELECT seq::text AS seq FROM d`,
    [d.gateway, d.jobId, d.worker, d.expiresAt, MAX_RECEIPT_SEQ.toString()],
  );
}

function assignMany(sql: Sql, gateway: Address, items: readonly Dispatch[]): Promise<{ seq: string }[]> {
  return sql.query<{ seq: string }>(
    `WITH x AS (
       SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(n integer, job_id text, worker text, expires_at timestamptz)
     ), c AS (
       UPDATE receipt_counters SET next_seq = next_seq + (SELECT count(*) FROM x), updated_at = now()
       WHERE gateway = $1 AND next_seq + (SELECT count(*) FROM x) - 1 <= $3::numeric
       RETURNING next_seq - (SELECT count(*) FROM x) AS first
     ), d AS (
       INSERT INTO dispatches (gateway, seq, job_id, worker, status, expires_at)
       SELECT $1, c.first + x.n - 1, x.job_id, x.worker, 'inflight', x.expires_at FROM x, c
       RETURNING seq
     )
     SELECT seq::text AS seq FROM d`,
    [
      gateway,
      JSON.stringify(
        items.map((d, i) => ({ n: i + 1, job_id: d.jobId, worker: d.worker, expires_at: d.expiresAt })),
      ),
      MAX_RECEIPT_SEQ.toString(),
    ],
  );
}

const ASSIGN: BatchOp<Dispatch, bigint> = {
  name: 'assign receipt numbers',
  async run(sql, items) {
    // One statement per gateway address (a process serves one; tests may use several).
    const out = new Map<Dispatch, bigint>();
    const byGateway = new Map<string, Dispatch[]>();
    for (const d of items) byGateway.set(d.gateway, [...(byGateway.get(d.gateway) ?? []), d]);
    for (const [gateway, ds] of byGateway) {
      const seqs = await assignRun(sql, gateway as Address, ds);
      for (const [i, d] of ds.entries()) out.set(d, seqs[i]!);
    }
    return items.map((d) => out.get(d)!);
  },
};

export function createReceiptNumberStore(db: Database) {
  return {
    /**
     * Makes sure the counter of `gateway` is at least `floor` (the chain's `nextReceiptSeq`) and above
     * every number this database ever stored or handed out for it. Call at startup, before any dispatch.
     */
    async init(gateway: Address, floor: bigint): Promise<bigint> {
      const rows = await db.query<{ next_seq: string }>(
        `INSERT INTO receipt_counters (gateway, next_seq)
         SELECT $1, GREATEST($2::numeric,
           COALESCE((SELECT max(seq) + 1 FROM receipts WHERE gateway = $1), 0),
           COALESCE((SELECT max(seq) + 1 FROM dispatches WHERE gateway = $1), 0))
         ON CONFLICT (gateway) DO UPDATE SET next_seq = GREATEST(receipt_counters.next_seq, EXCLUDED.next_seq),
           updated_at = now()
         RETURNING next_seq::text AS next_seq`,
        [gateway, floor.toString()],
      );
      return BigInt(rows[0]!.next_seq);
    },
    /** The next number `gateway` will hand out (undefined before `init`). */
    async next(gateway: Address, sql: Sql = db): Promise<bigint | undefined> {
      const rows = await sql.query<{ next_seq: string }>(
        'SELECT next_seq::text AS next_seq FROM receipt_counters WHERE gateway = $1',
        [gateway],
      );
      return rows[0] ? BigInt(rows[0].next_seq) : undefined;
    },
    /**
     * Hands out the next number for one dispatch of `jobId` to `worker`, recorded `inflight` until
     * `expiresAt`. Batched with every other dispatch at this moment: one statement numbers them all
     * (the counter row stays locked until it ends), so a number is never handed out twice.
     */
    assign(d: { gateway: Address; jobId: Hex; worker: Address; expiresAt: Date }): Promise<bigint> {
      return db.batch(ASSIGN, d);
    },
    /**
     * Takes an `inflight` number for the receipt being stored (call in the receipt's transaction).
     * False when the number is no longer in flight: the receipt must not be stored.
     */
    async take(tx: Sql, gateway: Address, seq: bigint): Promise<boolean> {
      const rows = await tx.query(
        `UPDATE dispatches SET status = 'receipted', updated_at = now()
         WHERE gateway = $1 AND seq = $2 AND status = 'inflight' RETURNING seq`,
        [gateway, seq.toString()],
      );
      return rows.length === 1;
    },
    /** The attempt ended without a receipt: the number is used, with no leaf. */
    async release(gateway: Address, seq: bigint): Promise<void> {
      await db.query(
        `UPDATE dispatches SET status = 'failed', updated_at = now()
         WHERE gateway = $1 AND seq = $2 AND status = 'inflight'`,
        [gateway, seq.toString()],
      );
    },
    /** Every number still in flight belongs to a dead process (embedded PGlite has one at a time). */
    async releaseAll(): Promise<void> {
      await db.query(`UPDATE dispatches SET status = 'failed', updated_at = now() WHERE status = 'inflight'`);
    },
    async status(gateway: Address, seq: bigint): Promise<DispatchStatus | undefined> {
      const rows = await db.query<{ status: DispatchStatus }>(
        'SELECT status FROM dispatches WHERE gateway = $1 AND seq = $2',
        [gateway, seq.toString()],
      );
      return rows[0]?.status;
    },
  };
}

export type ReceiptNumberStore = ReturnType<typeof createReceiptNumberStore>;
