import type { Sql } from './db.ts';
import { deadSql } from './instances.ts';

export type StoredResponse = { status: number; headers: Record<string, string>; body: string };

export type IdempotencyClaim =
  /** First use of the key: run the request, then `complete` or `release`. */
  | { state: 'new' }
  /** Same key, different request: refuse (422). */
  | { state: 'mismatch' }
  /** The first request finished: replay its response (or its job's result). */
  | { state: 'done'; response: StoredResponse | null; jobId: string | null }
  /** The first request is still running (`stale`: its process died, or its lock ran out). */
  | { state: 'in_progress'; jobId: string | null; stale: boolean };

export function createIdempotencyStore(db: Sql) {
  return {
    /**
     * Claims `(scope, key)` for a request with `fingerprint`, held by process `owner`. An expired entry
     * is forgotten; an in-progress entry whose process is dead (it stopped beating, or its lock ran
     * out) is stale: taken over as `new` when no job was started, else its job decides (api/idempotency.ts).
     */
    async claim(
      scope: string,
      key: string,
      fingerprint: string,
      lockMs: number,
      ttlSec: number,
      owner: string,
    ): Promise<IdempotencyClaim> {
      return db.transaction(async (tx) => {
        await tx.query('DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at < now()', [
          scope,
          key,
        ]);
        const inserted = await tx.query(
          `INSERT INTO idempotency_keys (scope, key, fingerprint, status, locked_until, expires_at, owner)
           VALUES ($1, $2, $3, 'in_progress', now() + ($4 || ' milliseconds')::interval, now() + ($5 || ' seconds')::interval, $6)
           ON CONFLICT DO NOTHING RETURNING key`,
          [scope, key, fingerprint, String(lockMs), String(ttlSec), owner],
        );
        if (inserted.length === 1) return { state: 'new' };
        const rows = await tx.query<{
          fingerprint: string;
          status: string;
          stale: boolean;
          response_status: number | null;
          response_headers: Record<string, string> | null;
          response_body: string | null;
          job_id: string | null;
        }>(
          `SELECT fingerprint, status,
             (locked_until < now() OR ${deadSql('k.owner')}) AS stale,
             response_status, response_headers, response_body, job_id
           FROM idempotency_keys k WHERE scope = $1 AND key = $2 FOR UPDATE`,
          [scope, key],
        );
        const row = rows[0];
        if (!row) return { state: 'in_progress', jobId: null, stale: false };
        if (row.fingerprint !== fingerprint) return { state: 'mismatch' };
        if (row.status === 'done') {
          return {
            state: 'done',
            jobId: row.job_id,
            response:
              row.response_status == null
                ? null
                : {
                    status: Number(row.response_status),
                    headers: row.response_headers ?? {},
                    body: row.response_body ?? '',
                  },
          };
        }
        if (row.stale && row.job_id === null) {
          await tx.query(
            `UPDATE idempotency_keys SET locked_until = now() + ($3 || ' milliseconds')::interval, owner = $4
             WHERE scope = $1 AND key = $2`,
            [scope, key, String(lockMs), owner],
          );
          return { state: 'new' };
        }
        return { state: 'in_progress', jobId: row.job_id, stale: Boolean(row.stale) };
      });
    },
    /** Links the entry to the job it started: a replay re-renders the job's stored result. */
    async setJob(scope: string, key: string, jobId: string): Promise<void> {
      await db.query('UPDATE idempotency_keys SET job_id = $3 WHERE scope = $1 AND key = $2', [
        scope,
        key,
        jobId,
      ]);
    },
    /** Stores the response to replay; `response` null: replay from the linked job. */
    async complete(scope: string, key: string, response: StoredResponse | null): Promise<void> {
      await db.query(
        `UPDATE idempotency_keys SET status = 'done', response_status = $3, response_headers = $4::jsonb, response_body = $5
         WHERE scope = $1 AND key = $2`,
        [
          scope,
          key,
          response?.status ?? null,
          response ? JSON.stringify(response.headers) : null,
          response?.body ?? null,
        ],
      );
    },
    /**
     * Forgets the key: the request did nothing worth replaying (a retry should run again). With
     * `onlyIfDone`, only a finished entry is forgotten (a concurrent retry may already hold a new one).
     */
    async release(
      scope: string,
      key: string,
      { onlyIfDone = false }: { onlyIfDone?: boolean } = {},
    ): Promise<void> {
      await db.transaction(async (tx) => {
        const gone = await tx.query(
          `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND ($3::boolean = false OR status = 'done') RETURNING key`,
          [scope, key, onlyIfDone],
        );
        if (gone.length === 0) return;
        // A failed job keeps its record but gives the key up, so the retry's job can take it.
        await tx.query(
          `UPDATE jobs SET idempotency_key = NULL WHERE idempotency_scope = $1 AND idempotency_key = $2 AND status = 'failed'`,
          [scope, key],
        );
      });
    },
    async prune(): Promise<number> {
      const rows = await db.query('DELETE FROM idempotency_keys WHERE expires_at < now() RETURNING key');
      return rows.length;
    },
  };
}

export type IdempotencyStore = ReturnType<typeof createIdempotencyStore>;
