import type { Address } from 'viem';
import type { Sql } from './db.ts';

/** What routing remembers about a worker (by bond owner) across connections and restarts. */
export type WorkerStats = {
  owner: Address;
  ewmaTtftMs: number | null;
  ewmaTps: number | null;
  reliability: number;
  jobsOk: number;
  jobsFailed: number;
  receiptsRejected: number;
  penalizedUntil: Date | null;
};

export function createWorkerStore(db: Sql) {
  return {
    async get(owner: Address): Promise<WorkerStats | undefined> {
      const rows = await db.query<Record<string, unknown>>(
        `SELECT owner, ewma_ttft_ms, ewma_tps, reliability, jobs_ok, jobs_failed, receipts_rejected, penalized_until
         FROM worker_stats WHERE owner = $1`,
        [owner],
      );
      const r = rows[0];
      if (!r) return undefined;
      return {
        owner: r.owner as Address,
        ewmaTtftMs: r.ewma_ttft_ms == null ? null : Number(r.ewma_ttft_ms),
        ewmaTps: r.ewma_tps == null ? null : Number(r.ewma_tps),
        reliability: Number(r.reliability),
        jobsOk: Number(r.jobs_ok),
        jobsFailed: Number(r.jobs_failed),
        receiptsRejected: Number(r.receipts_rejected),
        penalizedUntil: r.penalized_until == null ? null : new Date(r.penalized_until as string),
      };
    },
    async save(s: WorkerStats, operator: Address | null): Promise<void> {
      await db.query(
        `INSERT INTO worker_stats (owner, operator, ewma_ttft_ms, ewma_tps, reliability, jobs_ok, jobs_failed, receipts_rejected,
           penalized_until, last_seen_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())
         ON CONFLICT (owner) DO UPDATE SET operator = COALESCE(EXCLUDED.operator, worker_stats.operator),
           ewma_ttft_ms = EXCLUDED.ewma_ttft_ms, ewma_tps = EXCLUDED.ewma_tps, reliability = EXCLUDED.reliability,
           jobs_ok = EXCLUDED.jobs_ok, jobs_failed = EXCLUDED.jobs_failed, receipts_rejected = EXCLUDED.receipts_rejected,
           penalized_until = EXCLUDED.penalized_until, last_seen_at = now(), updated_at = now()`,
        [
          s.owner,
          operator,
          s.ewmaTtftMs,
          s.ewmaTps,
          s.reliability,
          s.jobsOk,
          s.jobsFailed,
          s.receiptsRejected,
          s.penalizedUntil,
        ],
      );
    },
  };
}

export type WorkerStore = ReturnType<typeof createWorkerStore>;
