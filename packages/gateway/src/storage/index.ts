import type { Address } from 'viem';
import type { Common } from '../common.ts';
import { createAttestationStore } from './attestations.ts';
import { commitReceipt } from './commit.ts';
import { type Database, openDatabase, type Sql } from './db.ts';
import { createIdempotencyStore } from './idempotency.ts';
import { createImageStore } from './images.ts';
import { createInstanceStore } from './instances.ts';
import { createJobStore } from './jobs.ts';
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
    /** Takes the number, stores the receipt and completes the job: one statement (false: number given up). */
    commitReceipt: (...a: Parameters<typeof commitReceipt> extends [Database, ...infer R] ? R : never) =>
      commitReceipt(db, ...a),
    /** A payer's unsettled and reserved fees, in one statement (`sql`: its locked transaction, or the pool). */
    payerSpend: (payer: Address, sql: Sql = db) => payerSpend(sql, payer),
    transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      return db.transaction(fn);
    },
    close: () => db.close(),
  };
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
