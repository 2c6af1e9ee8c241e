import type { Address } from 'viem';
import type { Common } from '../common.ts';
import { createAttestationStore } from './attestations.ts';
import { type CommitEntry, commitReceipt } from './commit.ts';
import { type Database, inMemory, openDatabase, type Sql } from './db.ts';
import { createIdempotencyStore } from './idempotency.ts';
import { createImageStore } from './images.ts';
import { createInstanceStore } from './instances.ts';
import { createJobStore, type JobCompletion } from './jobs.ts';
import { type CommitJournal, openCommitJournal, replayJournal } from './journal.ts';
import { createKeyStore } from './keys.ts';
import { migrate } from './migrations.ts';
import { createAuditNonceStore, createLeaseStore, payerSpend } from './misc.ts';
import { createReceiptNumberStore } from './receipt-numbers.ts';
import { createReceiptStore } from './receipts.ts';
import { createWorkerStore } from './workers.ts';

export type Storage = Awaited<ReturnType<typeof createStorage>>;

/** Opens the database (PGlite by default, PostgreSQL when `DATABASE_URL` is set), migrates it, and returns the stores. */
export async function createStorage({ common }: { common: Pick<Common, 'options' | 'logger'> }) {
  const { database } = common.options;
  const db: Database = await openDatabase(database);
  const applied = await migrate(db);
  // Embedded PGlite answers once a commit is journaled (see journal.ts); in memory nothing is durable,
  // so nothing needs the journal's file either.
  const answersEarly = db.kind === 'pglite' && database.journal;
  let journal: CommitJournal | undefined;
  /** Set by `close`: a journaled commit failing then is left for the next start, not tried again. */
  let closing = false;
  if (answersEarly && !inMemory(database.dir)) {
    try {
      journal = openCommitJournal(`${database.dir}-journal`);
      const replayed = await replayJournal(db, journal);
      if (replayed.entries > 0)
        common.logger.info({
          msg: 'commit journal replayed',
          entries: replayed.entries,
          committed_now: replayed.committedNow,
        });
    } catch (error) {
      journal?.close();
      await db.close();
      throw error;
    }
  }
  common.logger.info({
    msg: 'database ready',
    kind: db.kind,
    schema: database.schema,
    dir: db.kind === 'pglite' ? database.dir : undefined,
    migrations_applied: applied,
  });
  return {
    db,
    keys: createKeyStore(db),
    jobs: createJobStore(db),
    images: createImageStore(db),
    attestations: createAttestationStore(db),
    receipts: createReceiptStore(db),
    receiptNumbers: createReceiptNumberStore(db),
    idempotency: createIdempotencyStore(db),
    instances: createInstanceStore(db),
    workers: createWorkerStore(db),
    leases: createLeaseStore(db),
    auditNonces: createAuditNonceStore(db),
    /**
     * Takes the number, stores the receipt and completes the job: one statement; `stored` is false when
     * the number was given up (nothing written). With `early` (the caller knows its number cannot have
     * been given up), embedded PGlite journals the commit and returns `journaled`: the caller may answer
     * now, and the statement follows (`stored`; tried again for a while after a failure, then the line
     * is left for the next start).
     */
    commitReceipt(
      r: CommitEntry['r'],
      jobId: string,
      c: JobCompletion,
      { early = false }: { early?: boolean } = {},
    ): { journaled: boolean; stored: Promise<boolean> } {
      if (!early || !answersEarly) return { journaled: false, stored: commitReceipt(db, r, jobId, c) };
      let seg: ReturnType<CommitJournal['append']> | undefined;
      try {
        seg = journal?.append({ r, jobId, c });
      } catch (error) {
        // The journal cannot take it (a full disk): this answer waits for the database instead.
        common.logger.warn({
          msg: 'commit journal unwritable; answering after the commit',
          err: String(error),
        });
        return { journaled: false, stored: commitReceipt(db, r, jobId, c) };
      }
      const stored = commitAnswered(
        () => commitReceipt(db, r, jobId, c, database.commitDelayMs),
        (attempt, error) =>
          common.logger.warn({
            msg: 'a journaled commit failed; trying it again',
            attempt,
            err: error instanceof Error ? error.message : String(error),
          }),
        () => closing,
      ).then((ok) => {
        if (seg) journal!.committed(seg);
        return ok;
      });
      return { journaled: true, stored };
    },
    /** A payer's unsettled and reserved fees, in one statement (`sql`: its locked transaction, or the pool). */
    payerSpend: (payer: Address, sql: Sql = db) => payerSpend(sql, payer),
    transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      return db.transaction(fn);
    },
    async close() {
      closing = true;
      await db.close();
      journal?.close();
    },
  };
}

/** How long a journaled commit is tried again after a failure, at most (well inside its number's margin). */
const JOURNALED_COMMIT_RETRY_MS = 20_000;

/**
 * The statement of a commit whose client was already answered, tried again after a failure (50 ms, then
 * twice as long each time, at most 2 s apart) for up to `JOURNALED_COMMIT_RETRY_MS`: left to the next
 * start, the line would wait while settlement gives its number up once it expires (the worker never paid
 * for an answer the payer got for free); a commit is journaled only 30 s or more before that. A commit
 * that keeps failing, or fails once the storage is closing, rejects: its line stays for the next start.
 */
async function commitAnswered(
  run: () => Promise<boolean>,
  onFailure: (attempt: number, error: unknown) => void,
  closing: () => boolean,
): Promise<boolean> {
  const until = Date.now() + JOURNALED_COMMIT_RETRY_MS;
  for (let attempt = 1, wait = 50; ; attempt++, wait = Math.min(wait * 2, 2_000)) {
    try {
      return await run();
    } catch (error) {
      if (closing() || Date.now() + wait > until) throw error;
      onFailure(attempt, error);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

export type { StoredAttestation } from './attestations.ts';
export type { Database, Sql } from './db.ts';
export type { IdempotencyClaim, StoredResponse } from './idempotency.ts';
export type {
  ImageJobData,
  JobCompletion,
  JobError,
  JobInput,
  JobKind,
  JobMode,
  JobPricing,
  JobRecord,
  JobRequest,
  JobStatus,
  NewJob,
  SealedInput,
  StoredImage,
} from './jobs.ts';
export { sealedChunksOf, sealedOf } from './jobs.ts';
export type { ApiKeyRecord } from './keys.ts';
export type { DispatchStatus } from './receipt-numbers.ts';
export type { BatchRecord, StoredReceipt } from './receipts.ts';
export type { WorkerStats } from './workers.ts';
