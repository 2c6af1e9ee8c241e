import type { ChatMessage, ImageFormat, ImageParams, SamplingParams } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { BatchOp, Database, Sql } from './db.ts';
import { deadSql } from './instances.ts';
import { MAX_RECEIPT_SEQ } from './receipt-numbers.ts';

export type JobKind = 'chat' | 'completion' | 'image';
export type JobMode = 'sync' | 'stream' | 'async';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';
/**
 * A confidential request as the gateway holds it: sealed to one attested worker's key (docs/confidential.md).
 * The gateway never sees the prompt; its `outputText` holds the sealed response chunks (base64, JSON array).
 */
export type SealedInput = {
  worker: Address;
  /** The evidence digest the client encrypted to. */
  attestation: Hex;
  enc: string;
  ciphertext: string;
  /** The largest prompt (tokens) the reservation covers: the signed input count's bound. */
  maxInputTokens: number;
};
export type JobInput = { messages: ChatMessage[] } | { prompt: string } | { sealed: SealedInput };

/** The sealed request of a confidential job (undefined for every other). */
export const sealedOf = (job: Pick<JobRecord, 'request'>): SealedInput | undefined =>
  'sealed' in job.request.input ? job.request.input.sealed : undefined;

/** The sealed response chunks (base64) a confidential job's `outputText` holds. */
export function sealedChunksOf(job: Pick<JobRecord, 'outputText'>): string[] {
  if (!job.outputText) return [];
  try {
    const v = JSON.parse(job.outputText) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** One delivered image as the gateway stored it (bytes in `images`, by hash, until they expire). */
export type StoredImage = {
  /** `keccak256(bytes)`: the receipt commits to it. */
  hash: Hex;
  format: ImageFormat;
  width: number;
  height: number;
  /** The image's trajectory commitment, as signed (`ZERO_TRAJECTORY` when the engine exposes none). */
  trajectoryRoot: Hex;
  size: number;
};

/** What only an image job has (its `params` column holds `IMAGE_JOB_SAMPLING`: no text sampling). */
export type ImageJobData = {
  params: ImageParams;
  /** The prompt's "token ids" (its UTF-8 bytes) are the job's `promptTokenIds`; the negative prompt's here. */
  negativeTokenIds: number[];
  responseFormat: 'b64_json' | 'url';
  partialImages: number;
  /** The images once the job succeeded. */
  outputs: StoredImage[] | null;
};

/** The `params` of an image job: text sampling does not apply (its parameters are `image.params`). */
export const IMAGE_JOB_SAMPLING: SamplingParams = {
  maxTokens: 0,
  temperature: 0,
  topP: 1,
  seed: null,
  stop: [],
};

/** The request as the gateway normalised it: what the worker is asked to run. */
export type JobRequest = {
  input: JobInput;
  /** The `model` string the client sent (echoed in responses). */
  model: string;
  includeUsage: boolean;
  pin: Address[] | null;
  maxPrice: { inputPerM: string; outputPerM: string } | null;
  /** Unix seconds, the `created` of every response object for this job. */
  created: number;
};

export type JobPricing = {
  inputPerMTokens: string;
  outputPerMTokens: string;
  /** Image jobs: the model's rate per megapixel-step (AIPG wei). */
  perMegapixelStep?: string | undefined;
  confidentialPremiumBps: number;
};
export type JobError = { code: string; message: string; status: number };

export type JobRecord = {
  id: Hex;
  kind: JobKind;
  mode: JobMode;
  apiKeyId: string;
  payer: Address;
  modelId: Hex;
  modelName: string;
  request: JobRequest;
  params: SamplingParams;
  pricing: JobPricing;
  /** Image jobs only. */
  image: ImageJobData | null;
  status: JobStatus;
  reservedFee: bigint;
  fee: bigint | null;
  worker: Address | null;
  operator: Address | null;
  attempts: number;
  /** The prompt as this gateway tokenized it (what the worker was sent and had to sign). */
  promptTokenIds: number[] | null;
  outputTokenIds: number[] | null;
  /** The output as this gateway rendered it from `outputTokenIds` with the model's tokenizer. */
  outputText: string | null;
  /** The sampler the receipt's requestHash commits to. */
  sampler: string | null;
  finishReason: 'stop' | 'length' | null;
  error: JobError | null;
  ttftMs: number | null;
  totalMs: number | null;
  tokensPerSecond: number | null;
  idempotencyScope: string | null;
  idempotencyKey: string | null;
  webhookUrl: string | null;
  webhookStatus: 'pending' | 'delivered' | 'failed' | null;
  webhookAttempts: number;
  createdAt: Date;
  startedAt: Date | null;
  firstTokenAt: Date | null;
  completedAt: Date | null;
};

export type NewJob = Pick<
  JobRecord,
  | 'id'
  | 'kind'
  | 'mode'
  | 'apiKeyId'
  | 'payer'
  | 'modelId'
  | 'modelName'
  | 'request'
  | 'params'
  | 'pricing'
  | 'image'
  | 'status'
  | 'reservedFee'
  | 'idempotencyScope'
  | 'idempotencyKey'
  | 'webhookUrl'
> & { promptTokenIds: number[]; leaseUntil: Date | null; instanceId: string | null };

export type JobCompletion = {
  worker: Address;
  operator: Address;
  fee: bigint;
  outputTokenIds: number[];
  outputText: string;
  sampler: string;
  finishReason: 'stop' | 'length';
  ttftMs: number;
  totalMs: number;
  tokensPerSecond: number;
  firstTokenAt: Date | null;
  /** Dispatches the job took in all (recorded with the result; unchanged when omitted). */
  attempts?: number | undefined;
  /** Image jobs: the images delivered (recorded in the job's `image.outputs`). */
  images?: StoredImage[] | undefined;
};

type JobRow = Record<string, unknown>;

const COLUMNS = `id, kind, mode, api_key_id, payer, model_id, model_name, request, params, pricing, image, status,
  reserved_fee::text AS reserved_fee, fee::text AS fee, worker, operator, attempts, prompt_token_ids, output_token_ids,
  output_text, sampler, finish_reason, error, ttft_ms, total_ms, tokens_per_second, idempotency_scope, idempotency_key,
  webhook_url, webhook_status, webhook_attempts, created_at, started_at, first_token_at, completed_at`;

const date = (v: unknown) => (v == null ? null : new Date(v as string));
const num = (v: unknown) => (v == null ? null : Number(v));

function toRecord(r: JobRow): JobRecord {
  return {
    id: r.id as Hex,
    kind: r.kind as JobKind,
    mode: r.mode as JobMode,
    apiKeyId: r.api_key_id as string,
    payer: r.payer as Address,
    modelId: r.model_id as Hex,
    modelName: r.model_name as string,
    request: r.request as JobRequest,
    params: r.params as SamplingParams,
    pricing: r.pricing as JobPricing,
    image: (r.image as ImageJobData | null) ?? null,
    status: r.status as JobStatus,
    reservedFee: BigInt(r.reserved_fee as string),
    fee: r.fee == null ? null : BigInt(r.fee as string),
    worker: (r.worker as Address | null) ?? null,
    operator: (r.operator as Address | null) ?? null,
    attempts: Number(r.attempts),
    promptTokenIds: (r.prompt_token_ids as number[] | null) ?? null,
    outputTokenIds: (r.output_token_ids as number[] | null) ?? null,
    outputText: (r.output_text as string | null) ?? null,
    sampler: (r.sampler as string | null) ?? null,
    finishReason: (r.finish_reason as 'stop' | 'length' | null) ?? null,
    error: (r.error as JobError | null) ?? null,
    ttftMs: num(r.ttft_ms),
    totalMs: num(r.total_ms),
    tokensPerSecond: num(r.tokens_per_second),
    idempotencyScope: (r.idempotency_scope as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    webhookUrl: (r.webhook_url as string | null) ?? null,
    webhookStatus: (r.webhook_status as JobRecord['webhookStatus']) ?? null,
    webhookAttempts: Number(r.webhook_attempts ?? 0),
    createdAt: new Date(r.created_at as string),
    startedAt: date(r.started_at),
    firstTokenAt: date(r.first_token_at),
    completedAt: date(r.completed_at),
  };
}

/** The record `insert(j)` writes, as `get` would read it back (no read-back on the hot path). */
export function insertedJob(j: NewJob, now = new Date()): JobRecord {
  return {
    id: j.id,
    kind: j.kind,
    mode: j.mode,
    apiKeyId: j.apiKeyId,
    payer: j.payer,
    modelId: j.modelId,
    modelName: j.modelName,
    request: j.request,
    params: j.params,
    pricing: j.pricing,
    image: j.image,
    status: j.status,
    reservedFee: j.reservedFee,
    fee: null,
    worker: null,
    operator: null,
    attempts: 0,
    promptTokenIds: j.promptTokenIds,
    outputTokenIds: null,
    outputText: null,
    sampler: null,
    finishReason: null,
    error: null,
    ttftMs: null,
    totalMs: null,
    tokensPerSecond: null,
    idempotencyScope: j.idempotencyScope,
    idempotencyKey: j.idempotencyKey,
    webhookUrl: j.webhookUrl,
    webhookStatus: null,
    webhookAttempts: 0,
    createdAt: now,
    startedAt: j.status === 'running' ? now : null,
    firstTokenAt: null,
    completedAt: null,
  };
}

/** The record `complete(tx, job.id, c)` leaves, as `get` would read it back. */
export function completedJob(
  job: JobRecord,
  c: JobCompletion,
  attempts: number,
  now = new Date(),
): JobRecord {
  return {
    ...job,
    status: 'succeeded',
    reservedFee: 0n,
    fee: c.fee,
    worker: c.worker,
    operator: c.operator,
    attempts,
    sampler: c.sampler,
    outputTokenIds: c.outputTokenIds,
    outputText: c.outputText,
    finishReason: c.finishReason,
    ttftMs: c.ttftMs,
    totalMs: c.totalMs,
    tokensPerSecond: c.tokensPerSecond,
    firstTokenAt: c.firstTokenAt,
    image: job.image && c.images ? { ...job.image, outputs: c.images } : job.image,
    completedAt: now,
    startedAt: job.startedAt ?? now,
    webhookStatus: job.webhookUrl === null ? null : 'pending',
  };
}

const INSERT_COLUMNS = `id, kind, mode, api_key_id, payer, model_id, model_name, request, params, pricing, status,
  reserved_fee, idempotency_scope, idempotency_key, webhook_url, lease_until, instance_id, prompt_token_ids, image,
  started_at`;
const INSERT_VALUES = `$1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12::numeric, $13, $14, $15,
  $16::timestamptz, $17, $18::jsonb, $19::jsonb, CASE WHEN $11 = 'running' THEN now() END`;

function insertParams(j: NewJob): unknown[] {
  return [
    j.id,
    j.kind,
    j.mode,
    j.apiKeyId,
    j.payer,
    j.modelId,
    j.modelName,
    JSON.stringify(j.request),
    JSON.stringify(j.params),
    JSON.stringify(j.pricing),
    j.status,
    j.reservedFee.toString(),
    j.idempotencyScope,
    j.idempotencyKey,
    j.webhookUrl,
    j.leaseUntil,
    j.instanceId,
    JSON.stringify(j.promptTokenIds),
    j.image === null ? null : JSON.stringify(j.image),
  ];
}

/**
 * The job's first dispatch, numbered in the reservation's own statement (one statement and one commit
 * fewer per request): the worker was chosen, and its slot booked, before the job was written.
 */
export type FirstDispatch = { gateway: Address; worker: Address; expiresAt: Date };
type Reservation = { job: NewJob; spendable: bigint; dispatch: FirstDispatch | undefined };
type Reserved = {
  inserted: boolean;
  unsettled: bigint;
  reserved: bigint;
  /** The receipt number of the first dispatch (undefined when none was asked, or the counter could not give one). */
  seq: bigint | undefined;
};

/**
 * One reservation in one statement: the payer's row locked and read, the job inserted if it fits and,
 * if it was inserted and a first dispatch is asked, the next receipt number taken and its dispatch
 * recorded `inflight` (as `receiptNumbers.assign` does).
 */
async function insertReservedOne(sql: Sql, { job, spendable, dispatch }: Reservation): Promise<Reserved> {
  const rows = await sql.query<{
    unsettled: string;
    reserved: string;
    inserted: boolean;
    seq: string | null;
  }>(
    `WITH p AS (
       INSERT INTO payers (address) VALUES (lower($5)) ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address
       RETURNING unsettled, reserved
     ), j AS (
       INSERT INTO jobs (${INSERT_COLUMNS})
       SELECT ${INSERT_VALUES} FROM p WHERE p.unsettled + p.reserved + $12::numeric <= $20::numeric
       RETURNING id
     ), c AS (
       UPDATE receipt_counters SET next_seq = next_seq + 1, updated_at = now()
       WHERE gateway = $21::text AND next_seq <= $24::numeric AND EXISTS (SELECT 1 FROM j)
       RETURNING next_seq - 1 AS seq
     ), d AS (
       INSERT INTO dispatches (gateway, seq, job_id, worker, status, expires_at)
       SELECT $21::text, seq, $1, $22::text, 'inflight', $23::timestamptz FROM c RETURNING seq
     )
     SELECT unsettled::text AS unsettled, reserved::text AS reserved, EXISTS (SELECT 1 FROM j) AS inserted,
       (SELECT seq::text FROM d) AS seq
     FROM p`,
    [
      ...insertParams(job),
      spendable.toString(),
      dispatch?.gateway ?? null,
      dispatch?.worker ?? null,
      dispatch?.expiresAt ?? null,
      MAX_RECEIPT_SEQ.toString(),
    ],
  );
  const row = rows[0]!;
  return {
    inserted: row.inserted,
    unsettled: BigInt(row.unsettled),
    reserved: BigInt(row.reserved),
    seq: row.seq === null ? undefined : BigInt(row.seq),
  };
}

/**
 * Reservations of many requests in one statement: every payer's row locked (in address order, so two
 * processes never wait on each other in a cycle) and read once, each job inserted if what the payer holds
 * plus the fees of its jobs up to this one in the batch fits what it may spend. A refusal there may be
 * owed to an earlier job of the same payer that was refused itself, so every refused one is tried again
 * alone, in order, in the same transaction: exactly the outcome of running them one after another.
 * The inserted jobs that ask for a first dispatch get consecutive receipt numbers, in the items' order
 * (those of one gateway address: a process has one; any other's number later, by `receiptNumbers.assign`).
 */
const INSERT_RESERVED: BatchOp<Reservation, Reserved> = {
  name: 'reserve and insert jobs',
  async run(sql, items) {
    if (items.length === 1) return [await insertReservedOne(sql, items[0]!)];
    const gateway = items.find((i) => i.dispatch)?.dispatch?.gateway ?? null;
    const rows = items.map(({ job, spendable, dispatch }, i) => ({
      n: i + 1,
      id: job.id,
      kind: job.kind,
      mode: job.mode,
      api_key_id: job.apiKeyId,
      payer: job.payer,
      model_id: job.modelId,
      model_name: job.modelName,
      request: job.request,
      params: job.params,
      pricing: job.pricing,
      status: job.status,
      reserved_fee: job.reservedFee.toString(),
      idempotency_scope: job.idempotencyScope,
      idempotency_key: job.idempotencyKey,
      webhook_url: job.webhookUrl,
      lease_until: job.leaseUntil,
      instance_id: job.instanceId,
      prompt_token_ids: job.promptTokenIds,
      image: job.image,
      spendable: spendable.toString(),
      d_worker: dispatch && dispatch.gateway === gateway ? dispatch.worker : null,
      d_expires_at: dispatch && dispatch.gateway === gateway ? dispatch.expiresAt : null,
    }));
    const out = await sql.query<{
      n: number;
      unsettled: string;
      reserved: string;
      inserted: boolean;
      seq: string | null;
    }>(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(n integer, id text, kind text, mode text, api_key_id text,
           payer text, model_id text, model_name text, request jsonb, params jsonb, pricing jsonb, status text,
           reserved_fee numeric, idempotency_scope text, idempotency_key text, webhook_url text,
           lease_until timestamptz, instance_id text, prompt_token_ids jsonb, image jsonb, spendable numeric,
           d_worker text, d_expires_at timestamptz)
       ), p AS (
         INSERT INTO payers (address) SELECT DISTINCT lower(payer) FROM x ORDER BY 1
         ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address
         RETURNING address, unsettled, reserved
       ), c AS (
         SELECT x.*, p.unsettled AS held_unsettled, p.reserved AS held_reserved,
           sum(x.reserved_fee) OVER (PARTITION BY p.address ORDER BY x.n) AS upto
         FROM x JOIN p ON p.address = lower(x.payer)
       ), j AS (
         INSERT INTO jobs (${INSERT_COLUMNS})
         SELECT id, kind, mode, api_key_id, payer, model_id, model_name, request, params, pricing, status,
           reserved_fee, idempotency_scope, idempotency_key, webhook_url, lease_until, instance_id, prompt_token_ids,
           image, CASE WHEN status = 'running' THEN now() END
         FROM c WHERE held_unsettled + held_reserved + upto <= spendable ORDER BY n
         RETURNING id
       ), dx AS (
         SELECT c.n, c.id, c.d_worker, c.d_expires_at, row_number() OVER (ORDER BY c.n) AS k
         FROM c JOIN j ON j.id = c.id WHERE c.d_worker IS NOT NULL
       ), cnt AS (
         UPDATE receipt_counters SET next_seq = next_seq + (SELECT count(*) FROM dx), updated_at = now()
         WHERE gateway = $2::text AND EXISTS (SELECT 1 FROM dx)
           AND next_seq + (SELECT count(*) FROM dx) - 1 <= $3::numeric
         RETURNING next_seq - (SELECT count(*) FROM dx) AS first
       ), d AS (
         INSERT INTO dispatches (gateway, seq, job_id, worker, status, expires_at)
         SELECT $2::text, cnt.first + dx.k - 1, dx.id, dx.d_worker, 'inflight', dx.d_expires_at FROM dx, cnt
         RETURNING seq, job_id
       )
       SELECT c.n, c.held_unsettled::text AS unsettled, (c.held_reserved + c.upto - c.reserved_fee)::text AS reserved,
         EXISTS (SELECT 1 FROM j WHERE j.id = c.id) AS inserted,
         (SELECT d.seq::text FROM d WHERE d.job_id = c.id) AS seq
       FROM c ORDER BY c.n`,
      [JSON.stringify(rows), gateway, MAX_RECEIPT_SEQ.toString()],
    );
    const results: Reserved[] = [];
    for (const [i, item] of items.entries()) {
      const row = out.find((r) => Number(r.n) === i + 1);
      if (!row) throw new Error('a reservation of the batch is missing from its result');
      results.push(
        row.inserted
          ? {
              inserted: true,
              unsettled: BigInt(row.unsettled),
              reserved: BigInt(row.reserved),
              seq: row.seq === null ? undefined : BigInt(row.seq),
            }
          : await insertReservedOne(sql, item),
      );
    }
    return results;
  },
};

/** SQL: requeues the async and fails the other running jobs matching `where`, in one statement. */
function recoverSql(where: string): string {
  return `WITH q AS (
       UPDATE jobs SET status = 'queued', instance_id = NULL, lease_until = NULL, updated_at = now()
       WHERE status = 'running' AND mode = 'async' AND ${where} RETURNING id
     ), f AS (
       UPDATE jobs SET status = 'failed', reserved_fee = 0, completed_at = now(), lease_until = NULL, updated_at = now(),
         error = '{"code":"gateway_restarted","message":"the gateway stopped while the job ran; nothing was charged","status":503}'::jsonb
       WHERE status = 'running' AND mode <> 'async' AND ${where} RETURNING id
     )
     SELECT (SELECT count(*) FROM q)::int AS requeued, (SELECT count(*) FROM f)::int AS failed, now() AS at`;
}

export function createJobStore(db: Database) {
  return {
    /** Inserts a job holding `reservedFee` of its payer's balance (call inside the billing lock). */
    async insert(tx: Sql, j: NewJob): Promise<void> {
      await tx.query(`INSERT INTO jobs (${INSERT_COLUMNS}) VALUES (${INSERT_VALUES})`, insertParams(j));
    },
    /**
     * Inserts `j` holding `j.reservedFee` only if the payer's escrow still covers it: what its unsettled
     * receipts and jobs in flight already hold plus this fee must not exceed `spendable` (what the chain
     * lets this gateway charge it). The payer's row is locked (created if new) and read, and the job
     * inserted under that lock, in one statement batched with every other reservation at this moment,
     * so concurrent requests of one payer can never together overspend, on one process or many.
     * With `dispatch`, an inserted job's first dispatch gets its receipt number in the same statement.
     * Returns whether it was inserted, what was held before it, and that number.
     */
    insertReserved(j: NewJob, spendable: bigint, dispatch?: FirstDispatch): Promise<Reserved> {
      return db.batch(INSERT_RESERVED, { job: j, spendable, dispatch });
    },
    async get(id: string, sql: Sql = db): Promise<JobRecord | undefined> {
      const rows = await sql.query(`SELECT ${COLUMNS} FROM jobs WHERE id = $1`, [id]);
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async findByIdempotency(scope: string, key: string): Promise<JobRecord | undefined> {
      const rows = await db.query(
        `SELECT ${COLUMNS} FROM jobs WHERE idempotency_scope = $1 AND idempotency_key = $2`,
        [scope, key],
      );
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    /** Takes a job for this process: `queued` → `running`, leased until `leaseUntil`. False when someone else has it. */
    async start(id: string, instanceId: string, leaseUntil: Date): Promise<boolean> {
      const rows = await db.query(
        `UPDATE jobs SET status = 'running', instance_id = $2, lease_until = $3, started_at = COALESCE(started_at, now()),
           updated_at = now()
         WHERE id = $1 AND status = 'queued' RETURNING id`,
        [id, instanceId, leaseUntil],
      );
      return rows.length === 1;
    },
    /** Claims up to `limit` queued async jobs (oldest first) for this process; safe across replicas. */
    async claimQueued(instanceId: string, leaseUntil: Date, limit: number): Promise<JobRecord[]> {
      const rows = await db.query(
        `UPDATE jobs SET status = 'running', instance_id = $1, lease_until = $2, started_at = COALESCE(started_at, now()),
           updated_at = now()
         WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND mode = 'async' ORDER BY created_at LIMIT $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [instanceId, leaseUntil, limit],
      );
      return rows.map(toRecord);
    },
    async recordAttempt(id: string, worker: Address, operator: Address): Promise<void> {
      await db.query(
        'UPDATE jobs SET attempts = attempts + 1, worker = $2, operator = $3, updated_at = now() WHERE id = $1',
        [id, worker, operator],
      );
    },
    async extendLease(id: string, leaseUntil: Date): Promise<void> {
      await db.query(`UPDATE jobs SET lease_until = $2 WHERE id = $1 AND status = 'running'`, [
        id,
        leaseUntil,
      ]);
    },
    /**
     * Marks the job failed, charges nothing, releases its reservation. `last`: the dispatches it took
     * and the worker of the last one (kept otherwise).
     */
    async fail(
      id: string,
      error: JobError,
      last?: { attempts: number; worker?: Address | undefined; operator?: Address | undefined },
    ): Promise<void> {
      await db.query(
        `UPDATE jobs SET status = 'failed', reserved_fee = 0, error = $2::jsonb, completed_at = now(), lease_until = NULL,
           updated_at = now(), attempts = COALESCE($3, attempts), worker = COALESCE($4, worker),
           operator = COALESCE($5, operator),
           webhook_status = CASE WHEN webhook_url IS NULL THEN NULL ELSE 'pending' END,
           webhook_next_at = CASE WHEN webhook_url IS NULL THEN NULL ELSE now() END
         WHERE id = $1 AND status IN ('queued', 'running')`,
        [id, JSON.stringify(error), last?.attempts ?? null, last?.worker ?? null, last?.operator ?? null],
      );
    },
    /**
     * Jobs whose process vanished (it stopped beating, or the lease passed): async jobs go back to the
     * queue, the others fail (their client is gone; nothing was charged: a charged job is `succeeded`,
     * in the receipt's transaction). Only `jobId` when given. Returns how many of each. Looks at every
     * running job: at start, and for one job; the periodic pass is `recoverSince`.
     */
    async recoverExpired(jobId?: string): Promise<{ requeued: number; failed: number }> {
      const dead = `(lease_until < now() OR ${deadSql('instance_id')})`;
      // Two texts, not `($1 IS NULL OR id = $1)`: a prepared plan for that scans every job even for one.
      const [row] = await db.query<{ requeued: number; failed: number }>(
        recoverSql(jobId === undefined ? dead : `id = $1::text AND ${dead}`),
        jobId === undefined ? [] : [jobId],
      );
      return { requeued: Number(row?.requeued ?? 0), failed: Number(row?.failed ?? 0) };
    },
    /**
     * The periodic pass of `recoverExpired`, bounded by what changed instead of by history: leases that
     * ended at or after `since` (the `at` an earlier pass returned: everything that ended before was
     * recovered then), and the jobs of `instances` (processes found dead since). A finished job leaves
     * an index entry of its lease behind until the table is vacuumed, so a pass over every lease that
     * ever ended grows with every job served. `at`: the database's time of this pass.
     */
    async recoverSince(
      since: Date,
      instances: readonly string[],
    ): Promise<{ requeued: number; failed: number; at: Date }> {
      type Row = { requeued: number; failed: number; at: Date };
      // Two statements: an OR of the two would be planned as a scan of every running job's entry.
      const [byLease] = await db.query<Row>(
        recoverSql('lease_until < now() AND lease_until >= $1::timestamptz'),
        [since],
      );
      const [byProcess] =
        instances.length > 0
          ? await db.query<Row>(recoverSql('instance_id = ANY($1::text[])'), [[...instances]])
          : [];
      return {
        requeued: Number(byLease?.requeued ?? 0) + Number(byProcess?.requeued ?? 0),
        failed: Number(byLease?.failed ?? 0) + Number(byProcess?.failed ?? 0),
        at: new Date(byLease!.at),
      };
    },
    /** Ends every lease (embedded PGlite: only one process can own the database, so they are all stale). */
    async expireAllRunning(): Promise<void> {
      await db.query(`UPDATE jobs SET lease_until = now() - interval '1 second' WHERE status = 'running'`);
    },
    async countByStatus(): Promise<Record<string, number>> {
      const rows = await db.query<{ status: string; n: string | number }>(
        'SELECT status, count(*)::int AS n FROM jobs GROUP BY status',
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    },
    /** Claims finished jobs whose webhook is due, pushing their next attempt out by `leaseMs` meanwhile. */
    async claimWebhooks(limit: number, leaseMs: number): Promise<JobRecord[]> {
      const rows = await db.query(
        `UPDATE jobs SET webhook_next_at = now() + ($2 || ' milliseconds')::interval
         WHERE id IN (SELECT id FROM jobs WHERE webhook_status = 'pending' AND webhook_next_at <= now()
                      ORDER BY webhook_next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [limit, String(leaseMs)],
      );
      return rows.map(toRecord);
    },
    async webhookAttempted(
      id: string,
      r: { delivered: boolean; error: string | null; nextAt: Date | null },
    ): Promise<void> {
      await db.query(
        `UPDATE jobs SET webhook_attempts = webhook_attempts + 1, webhook_last_error = $2,
           webhook_status = CASE WHEN $3::boolean THEN 'delivered' WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
           webhook_next_at = $4::timestamptz
         WHERE id = $1`,
        [id, r.error, r.delivered, r.nextAt],
      );
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;
