import type { Receipt } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { BatchOp, Database, Sql } from './db.ts';
import type { JobCompletion } from './jobs.ts';

type Commit = {
  r: { receipt: Receipt; signature: Hex; signer: Address; leafHash: Hex };
  jobId: string;
  c: JobCompletion;
};

/**
 * Receipts and results of many jobs, committed in one statement (atomic without a transaction): for
 * each, the dispatch's number is taken (`inflight` → `receipted`), the receipt stored, the job marked
 * succeeded and its reservation released. A job whose number was no longer in flight (settlement gives
 * up a number that stays in flight past its time, and a receipt that late is refused) gets nothing
 * written: false for it. The same rows `receiptNumbers.take`, `receipts.insert` and `jobs.complete` write.
 */
const COMMIT_RECEIPTS: BatchOp<Commit, boolean> = {
  name: 'commit receipts',
  async run(sql, items) {
    if (items.length === 1) return [await commitOne(sql, items[0]!)];
    // One process signs with one gateway key: its numbers are looked up by key (gateway, seq) within
    // the group's range, never found by scanning the in-flight index, whose dead entries (one per number
    // ever receipted, until a vacuum: PGlite never runs one) grow with every request served.
    const gateway = items[0]!.r.receipt.gateway;
    if (items.some((i) => i.r.receipt.gateway !== gateway)) {
      const out: boolean[] = [];
      for (const item of items) out.push(await commitOne(sql, item));
      return out;
    }
    const seqs = items.map((i) => i.r.receipt.seq).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const rows = items.map(({ r, jobId, c }) => {
      const x = r.receipt;
      return {
        job_id: jobId,
        gateway: x.gateway,
        payer: x.payer,
        worker: x.worker,
        model_id: x.modelId,
        request_hash: x.requestHash,
        output_hash: x.outputHash,
        input_units: x.inputUnits.toString(),
        output_units: x.outputUnits.toString(),
        fee: x.fee.toString(),
        completed_at: x.completedAt.toString(),
        confidential: x.confidential,
        signature: r.signature,
        signer: r.signer,
        leaf_hash: r.leafHash,
        seq: x.seq.toString(),
        job_worker: c.worker,
        job_operator: c.operator,
        sampler: c.sampler,
        output_token_ids: c.outputTokenIds,
        output_text: c.outputText,
        finish_reason: c.finishReason,
        ttft_ms: c.ttftMs,
        total_ms: c.totalMs,
        tokens_per_second: c.tokensPerSecond,
        first_token_at: c.firstTokenAt?.toISOString() ?? null,
        attempts: c.attempts ?? null,
        images: c.images ?? null,
      };
    });
    const stored = await sql.query<{ job_id: string }>(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, gateway text, payer text, worker text,
           model_id text, request_hash text, output_hash text, input_units numeric, output_units numeric, fee numeric,
           completed_at numeric, confidential boolean, signature text, signer text, leaf_hash text, seq numeric,
           job_worker text, job_operator text, sampler text, output_token_ids jsonb, output_text text,
           finish_reason text, ttft_ms double precision, total_ms double precision, tokens_per_second double precision,
           first_token_at timestamptz, attempts integer, images jsonb)
       ), t AS (
         UPDATE dispatches d SET status = 'receipted', updated_at = now()
         WHERE d.gateway = $2::text AND d.seq BETWEEN $4::numeric AND $5::numeric AND d.seq = ANY ($3::numeric[])
           AND d.status = 'inflight'
         RETURNING d.gateway, d.seq
       ), r AS (
         INSERT INTO receipts (job_id, gateway, payer, worker, model_id, request_hash, output_hash, input_units,
           output_units, fee, completed_at, confidential, signature, signer, leaf_hash, seq)
         SELECT x.job_id, x.gateway, x.payer, x.worker, x.model_id, x.request_hash, x.output_hash, x.input_units,
           x.output_units, x.fee, x.completed_at, x.confidential, x.signature, x.signer, x.leaf_hash, x.seq
         FROM x JOIN t ON t.gateway = x.gateway AND t.seq = x.seq
         RETURNING job_id
       ), j AS (
         UPDATE jobs SET status = 'succeeded', reserved_fee = 0, fee = x.fee, worker = x.job_worker,
           operator = x.job_operator, sampler = x.sampler, output_token_ids = x.output_token_ids,
           output_text = x.output_text, finish_reason = x.finish_reason, ttft_ms = x.ttft_ms, total_ms = x.total_ms,
           tokens_per_second = x.tokens_per_second, first_token_at = x.first_token_at,
           attempts = COALESCE(x.attempts, jobs.attempts), completed_at = now(), lease_until = NULL, updated_at = now(),
           image = CASE WHEN x.images IS NULL THEN jobs.image ELSE jsonb_set(jobs.image, '{outputs}', x.images) END,
           webhook_status = CASE WHEN jobs.webhook_url IS NULL THEN NULL ELSE 'pending' END,
           webhook_next_at = CASE WHEN jobs.webhook_url IS NULL THEN NULL ELSE now() END
         FROM x WHERE jobs.id = x.job_id AND x.job_id IN (SELECT job_id FROM r) RETURNING jobs.id
       )
       SELECT job_id FROM r`,
      [JSON.stringify(rows), gateway, seqs.map(String), String(seqs[0]), String(seqs[seqs.length - 1])],
    );
    const done = new Set(stored.map((s) => s.job_id));
    return items.map((i) => done.has(i.jobId));
  },
};

/** One job's (plain parameters: cheaper to plan than the batch's JSON for a lone request). */
async function commitOne(sql: Sql, { r, jobId, c }: Commit): Promise<boolean> {
  const x = r.receipt;
  const rows = await sql.query<{ n: number }>(
    `WITH t AS (
       UPDATE dispatches SET status = 'receipted', updated_at = now()
       WHERE gateway = $2 AND seq = $16 AND status = 'inflight' RETURNING seq
     ), r AS (
       INSERT INTO receipts (job_id, gateway, payer, worker, model_id, request_hash, output_hash, input_units,
         output_units, fee, completed_at, confidential, signature, signer, leaf_hash, seq)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, seq FROM t
       RETURNING job_id
     ), j AS (
       UPDATE jobs SET status = 'succeeded', reserved_fee = 0, fee = $10, worker = $17, operator = $18,
         sampler = $19, output_token_ids = $20::jsonb, output_text = $21, finish_reason = $22,
         ttft_ms = $23, total_ms = $24, tokens_per_second = $25, first_token_at = $26,
         attempts = COALESCE($27::integer, attempts), completed_at = now(), lease_until = NULL, updated_at = now(),
         image = CASE WHEN $28::jsonb IS NULL THEN image ELSE jsonb_set(image, '{outputs}', $28::jsonb) END,
         webhook_status = CASE WHEN webhook_url IS NULL THEN NULL ELSE 'pending' END,
         webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE now() END
       WHERE id = $1 AND EXISTS (SELECT 1 FROM t) RETURNING id
     )
     SELECT (SELECT count(*) FROM r)::int AS n`,
    [
      jobId,
      x.gateway,
      x.payer,
      x.worker,
      x.modelId,
      x.requestHash,
      x.outputHash,
      x.inputUnits.toString(),
      x.outputUnits.toString(),
      x.fee.toString(),
      x.completedAt.toString(),
      x.confidential,
      r.signature,
      r.signer,
      r.leafHash,
      x.seq.toString(),
      c.worker,
      c.operator,
      c.sampler,
      JSON.stringify(c.outputTokenIds),
      c.outputText,
      c.finishReason,
      c.ttftMs,
      c.totalMs,
      c.tokensPerSecond,
      c.firstTokenAt,
      c.attempts ?? null,
      c.images ? JSON.stringify(c.images) : null,
    ],
  );
  return Number(rows[0]?.n ?? 0) === 1;
}

/** What a commit writes: the verified receipt (with its signer and leaf) and the job's result. */
export type CommitEntry = Commit;

/**
 * A job's receipt and result, committed together with those of every job finishing at the same moment
 * (one statement, group commit; see `COMMIT_RECEIPTS`). The receipt is stored under `jobId`, the
 * gateway's own id of the job. Returns false when its number was no longer in flight (nothing written).
 * `deferMs`: the commit may wait that long for others to join it (`Database.batch`).
 */
export function commitReceipt(
  db: Database,
  r: { receipt: Receipt; signature: Hex; signer: Address; leafHash: Hex },
  jobId: string,
  c: JobCompletion,
  deferMs?: number,
): Promise<boolean> {
  return db.batch(COMMIT_RECEIPTS, { r, jobId, c }, deferMs);
}
