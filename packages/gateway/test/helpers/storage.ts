import { randomBytes } from 'node:crypto';
import { buildReceiptTree, type Receipt } from '@aipg/core';
import type { Address, Hex } from 'viem';
import {
  createGatewayOptions,
  createLogger,
  createStorage,
  type GatewayOptions,
  type Storage,
} from '../../src/index.ts';
import type { commitReceipt } from '../../src/storage/commit.ts';
import type { Database, Sql } from '../../src/storage/db.ts';
import type { NewJob } from '../../src/storage/jobs.ts';
import { createReceiptStore } from '../../src/storage/receipts.ts';
import { dropTestSchema } from './grid.ts';

/** Where a storage of its own lives: embedded PGlite (in memory, or in `dir`), or `url`'s server. */
export type TestDatabase = { dir?: string | undefined; url?: string | undefined };

/**
 * A gateway's storage of its own, for a test or a bench: embedded PGlite, or a fresh schema (named
 * `<prefix>_<random>`, dropped by `close`) on the PostgreSQL server of `db.url`; holding one API key,
 * `keyId`, of `payer`. Nothing else of a gateway (no chain: its address is a placeholder).
 */
export async function openTestStorage(
  prefix: string,
  db: TestDatabase,
  key: { keyId: string; payer: Address },
  /** Options as dotted flags (`{ 'database.commitDelayMs': 5 }`). */
  set: Record<string, unknown> = {},
): Promise<{ storage: Storage; options: GatewayOptions; close(): Promise<void> }> {
  const options = createGatewayOptions(
    {
      rpcUrl: 'http://127.0.0.1:1',
      grid: '0x0000000000000000000000000000000000000001',
      privateKey: `0x${'11'.repeat(32)}`,
      databaseDir: db.dir ?? 'memory://',
      databaseUrl: db.url,
      databaseSchema: db.url ? `${prefix}_${randomBytes(5).toString('hex')}` : undefined,
      logLevel: 'silent',
      ...set,
    },
    {},
  );
  const storage = await createStorage({ common: { options, logger: createLogger('silent') } });
  await storage.keys.insert({
    id: key.keyId,
    keyHash: `hash-${key.keyId}`,
    payer: key.payer,
    name: null,
    nonce: `nonce-${key.keyId}`,
    message: 'm',
    signature: '0x',
  });
  return {
    storage,
    options,
    async close() {
      await storage.close();
      await dropTestSchema(options);
    },
  };
}

/** A sync chat job running now, holding `reservedFee`, with a fresh id; `over` changes any field. */
export function testJob(
  base: { keyId: string; payer: Address; reservedFee: bigint; modelId?: Hex },
  over: Partial<NewJob> = {},
): NewJob {
  return {
    id: `0x${randomBytes(32).toString('hex')}`,
    kind: 'chat',
    mode: 'sync',
    apiKeyId: base.keyId,
    payer: base.payer,
    modelId: base.modelId ?? `0x${randomBytes(32).toString('hex')}`,
    modelName: 'm',
    request: {
      input: { messages: [{ role: 'user', content: 'x' }] },
      model: 'm',
      includeUsage: false,
      pin: null,
      maxPrice: null,
      created: 1,
    },
    params: { maxTokens: 8, temperature: 0, topP: 1, seed: null, stop: [] },
    pricing: { inputPerMTokens: '1', outputPerMTokens: '2', confidentialPremiumBps: 0 },
    status: 'running',
    reservedFee: base.reservedFee,
    promptTokenIds: [1, 2, 3],
    idempotencyScope: null,
    idempotencyKey: null,
    webhookUrl: null,
    leaseUntil: new Date(Date.now() + 60_000),
    instanceId: 'test',
    image: null,
    ...over,
  };
}

/**
 * Reserves `job` as a request does (a payer able to spend anything) with its first dispatch to `worker`
 * numbered, expiring `expiresInMs` from now; returns the number and what committing it with `fee` takes.
 */
export async function reserveTestJob(
  storage: Storage,
  job: NewJob,
  p: { gateway: Address; worker: Address; fee: bigint; expiresInMs?: number },
): Promise<{ seq: bigint; commit: CommitArgs }> {
  const r = await storage.jobs.insertReserved(job, 10n ** 30n, {
    gateway: p.gateway,
    worker: p.worker,
    expiresAt: new Date(Date.now() + (p.expiresInMs ?? 60_000)),
  });
  return { seq: r.seq!, commit: testCommit(job, r.seq!, p) };
}

/**
 * Serves `job` as a request does: reserved (`reserveTestJob`), then its receipt and result committed with
 * `fee`. Throws if the receipt was refused.
 */
export async function serveTestJob(
  storage: Storage,
  job: NewJob,
  p: { gateway: Address; worker: Address; fee: bigint },
): Promise<void> {
  const { commit } = await reserveTestJob(storage, job, p);
  if (!(await storage.commitReceipt(...commit).stored))
    throw new Error(`the receipt of job ${job.id} was not stored`);
}

/** What `commitReceipt` takes after the database (no deferral). */
export type CommitArgs =
  Parameters<typeof commitReceipt> extends [Database, infer A, infer B, infer C, ...unknown[]]
    ? [A, B, C]
    : never;

/** The receipt and result of `job` run by `worker` under receipt number `seq`, as `commitReceipt` takes them. */
export function testCommit(
  job: NewJob,
  seq: bigint,
  p: { gateway: Address; worker: Address; fee: bigint },
): CommitArgs {
  const hex32 = () => `0x${randomBytes(32).toString('hex')}` as Hex;
  const receipt: Receipt = {
    jobId: job.id,
    gateway: p.gateway,
    payer: job.payer,
    worker: p.worker,
    modelId: job.modelId,
    requestHash: hex32(),
    outputHash: hex32(),
    inputUnits: BigInt(job.promptTokenIds.length),
    outputUnits: 8n,
    fee: p.fee,
    completedAt: 1n,
    confidential: false,
    seq,
  };
  return [
    { receipt, signature: `0x${'cd'.repeat(65)}`, signer: p.worker, leafHash: hex32() },
    job.id,
    {
      worker: p.worker,
      operator: p.worker,
      fee: p.fee,
      outputTokenIds: [5, 6, 7, 8, 9, 10, 11, 12],
      outputText: 'abcdefgh',
      sampler: 'aipg-sampler-v1',
      finishReason: 'length',
      ttftMs: 1,
      totalMs: 2,
      tokensPerSecond: 3,
      firstTokenAt: null,
    },
  ];
}

/** What settlement records for `receipts` (`createBatch`'s `build`): the root of their tree and their total. */
export function buildTestBatch(receipts: readonly { receipt: Receipt }[]) {
  const tree = buildReceiptTree(receipts.map((r) => r.receipt));
  return { root: tree.root, total: receipts.reduce((t, r) => t + r.receipt.fee, 0n) };
}

/**
 * Batches what waits of `gateway` from the end of the last batch, and marks it settled (what
 * settlement does once the chain took it). Returns how many receipts it held.
 */
export async function settleWaiting(sql: Sql, gateway: Address): Promise<number> {
  const receipts = createReceiptStore(sql);
  const last = (await receipts.listBatches(1))[0];
  const from = last?.firstSeq != null ? last.firstSeq + last.seqCount! : 0n;
  const created = await receipts.createBatch({ gateway, from, max: 100_000 }, buildTestBatch);
  if (!created) throw new Error('nothing waited to be batched');
  await receipts.batchSettled(created.batch.id, { txHash: `0x${'ef'.repeat(32)}`, block: 1n });
  return created.receipts.length;
}
