import type { Receipt } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { Sql } from './db.ts';
import type { JobCompletion } from './jobs.ts';

/**
 * A job's receipt and result, committed together in one statement (atomic without a transaction):
 * the dispatch's number is taken (`inflight` → `receipted`), the receipt stored, the job marked
 * succeeded and its reservation released. Nothing is written unless the number was still in flight
 * (settlement gives up a number that stays in flight past its time, and a receipt that late is refused):
 * returns false then. The same rows `receiptNumbers.take`, `receipts.insert` and `jobs.complete` write.
 */
export async function commitReceipt(
  db: Sql,
  r: { receipt: Receipt; signature: Hex; signer: Address; leafHash: Hex },
  jobId: string,
  c: JobCompletion,
): Promise<boolean> {
  const x = r.receipt;
  const rows = await db.query<{ n: number }>(
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
         ttft_ms = $23, total_ms = $24, tokens_per_second = $25, first_token_at = $26, completed_at = now(),
         lease_until = NULL, updated_at = now(),
         webhook_status = CASE WHEN webhook_url IS NULL THEN NULL ELSE 'pending' END,
         webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE now() END
       WHERE id = $27 AND EXISTS (SELECT 1 FROM t) RETURNING id
     )
     SELECT (SELECT count(*) FROM r)::int AS n`,
    [
      x.jobId,
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
      jobId,
    ],
  );
  return Number(rows[0]?.n ?? 0) === 1;
}
