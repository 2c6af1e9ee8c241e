import { randomBytes } from 'node:crypto';
import type { Receipt } from '@aipg/core';
import { type Address, getAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Storage } from '../src/index.ts';
import { type BatchOp, openDatabase } from '../src/storage/db.ts';
import type { NewJob } from '../src/storage/jobs.ts';
import { migrate, migrations, splitStatements } from '../src/storage/migrations.ts';
import { payerSpend } from '../src/storage/misc.ts';
import { buildTestBatch, openTestStorage, testCommit, testJob } from './helpers/storage.ts';

// The same suite runs on PGlite (default) and on PostgreSQL when DATABASE_URL is set.
let storage: Storage;
let close: () => Promise<void>;
const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const hex32 = () => `0x${randomBytes(32).toString('hex')}` as Hex;
const KEY = 'ktestkey00001';

beforeAll(async () => {
  ({ storage, close } = await openTestStorage(
    'gw_storage',
    { url: process.env.DATABASE_URL || undefined },
    { keyId: KEY, payer },
  ));
  await storage.receiptNumbers.init(gateway, 0n);
});

afterAll(async () => {
  await close?.();
});

function newJob(fee: bigint, over: Partial<NewJob> = {}): NewJob {
  return testJob({ keyId: KEY, payer, reservedFee: fee }, over);
}

/** A payer's totals summed from its rows: what the `payers` row kept by triggers must always hold. */
async function recomputedSpend(p: Address): Promise<{ unsettled: bigint; reserved: bigint }> {
  const [row] = await storage.db.query<{ unsettled: string; reserved: string }>(
    `SELECT (SELECT COALESCE(SUM(fee), 0) FROM receipts WHERE lower(payer) = lower($1) AND settled = false)::text
              AS unsettled,
            (SELECT COALESCE(SUM(reserved_fee), 0) FROM jobs
              WHERE lower(payer) = lower($1) AND status IN ('queued', 'running'))::text AS reserved`,
    [p],
  );
  return { unsettled: BigInt(row!.unsettled), reserved: BigInt(row!.reserved) };
}

// Receipts in these tests name `worker` as their gateway too.
const gateway = worker;

async function storeReceipt(fee: bigint, p: Address = payer): Promise<Receipt> {
  const job = newJob(fee, { payer: p });
  await storage.transaction((tx) => storage.jobs.insert(tx, job));
  const seq = await storage.receiptNumbers.assign({
    gateway,
    jobId: job.id,
    worker,
    expiresAt: new Date(Date.now() + 60_000),
  });
  const args = testCommit(job, seq, { gateway, worker, fee });
  const stored = await storage.commitReceipt(...args).stored;
  expect(stored).toBe(true);
  const [{ receipt }, , completion] = args;
  const done = await storage.jobs.get(job.id);
  expect(done).toMatchObject({
    status: 'succeeded',
    reservedFee: 0n,
    fee,
    outputText: completion.outputText,
    finishReason: completion.finishReason,
  });
  expect((await storage.receipts.getByJob(job.id))?.receipt).toEqual(receipt);
  return receipt;
}

describe(`storage on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  test('migrations are recorded and applied once', async () => {
    expect(await migrate(storage.db)).toEqual([]);
    const rows = await storage.db.query<{ id: number }>('SELECT id FROM gateway_migrations ORDER BY id');
    expect(rows.map((r) => Number(r.id))).toEqual(migrations.map((m) => m.id));
    expect(migrations.map((m) => m.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  test('api keys: hash lookup, nonce once per payer, revoke', async () => {
    expect(
      await storage.keys.insert({
        id: 'kother0000001',
        keyHash: 'h2',
        payer,
        name: 'n',
        nonce: `nonce-${KEY}`,
        message: 'm',
        signature: '0x',
      }),
    ).toBe(false);
    expect(
      await storage.keys.insert({
        id: 'kother0000001',
        keyHash: 'h2',
        payer,
        name: 'n',
        nonce: 'nonce-0002',
        message: 'm',
        signature: '0x',
      }),
    ).toBe(true);
    expect((await storage.keys.findByHash('h2'))?.id).toBe('kother0000001');
    expect(await storage.keys.revoke('kother0000001', payer)).toBe(true);
    expect(await storage.keys.findByHash('h2')).toBeUndefined();
    expect((await storage.keys.listByPayer(payer)).length).toBe(2);
  });

  test('reservations: held while in flight, released when the job ends', async () => {
    const other = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
    const a = newJob(100n, { payer: other });
    const b = newJob(50n, { payer: other });
    await storage.transaction(async (tx) => {
      await storage.jobs.insert(tx, a);
      await storage.jobs.insert(tx, b);
    });
    expect((await storage.payerSpend(other)).reserved).toBe(150n);
    await storage.jobs.fail(a.id, { code: 'x', message: 'y', status: 502 });
    expect((await storage.payerSpend(other)).reserved).toBe(50n);
    const failed = await storage.jobs.get(a.id);
    expect(failed?.status).toBe('failed');
    expect(failed?.error?.code).toBe('x');
  });

  test('receipt numbers: handed out once each, monotonic, never below the floor, kept across a re-init', async () => {
    const other = '0x0000000000000000000000000000000000000abc' as Address;
    expect(await storage.receiptNumbers.init(other, 40n)).toBe(40n);
    const job = newJob(1n);
    await storage.transaction((tx) => storage.jobs.insert(tx, job));
    const assign = () =>
      storage.receiptNumbers.assign({
        gateway: other,
        jobId: job.id,
        worker,
        expiresAt: new Date(),
      });
    const numbers = await Promise.all([assign(), assign(), assign()]);
    expect([...numbers].sort()).toEqual([40n, 41n, 42n]);
    // A lower floor (a stale chain read) never moves the counter back; a higher one moves it up.
    expect(await storage.receiptNumbers.init(other, 0n)).toBe(43n);
    expect(await storage.receiptNumbers.init(other, 100n)).toBe(100n);
    expect(await assign()).toBe(100n);
    await storage.receiptNumbers.release(other, 41n);
    expect(await storage.receiptNumbers.status(other, 41n)).toBe('failed');
    expect(await storage.transaction((tx) => storage.receiptNumbers.take(tx, other, 41n))).toBe(false);
    expect(await storage.transaction((tx) => storage.receiptNumbers.take(tx, other, 42n))).toBe(true);
    const fresh = await storage.receiptNumbers
      .assign({
        gateway: '0x0000000000000000000000000000000000000def',
        jobId: job.id,
        worker,
        expiresAt: new Date(),
      })
      .catch((e: unknown) => e);
    expect(fresh).toBeInstanceOf(Error);
  });

  test('receipts: unsettled spend, one pending batch over a contiguous range, settle marks them', async () => {
    const p = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' as Address;
    const from = (await storage.receiptNumbers.next(gateway))!;
    for (let i = 0; i < 5; i++) await storeReceipt(10n + BigInt(i), p);
    expect(await storage.receipts.unsettledSpend(p)).toBe(60n);
    // Two concurrent batch builders: one batch, the other waits for it to settle (a range is sent once).
    const [x, y] = await Promise.all([
      storage.receipts.createBatch({ gateway, from, max: 3 }, buildTestBatch),
      storage.receipts.createBatch({ gateway, from, max: 3 }, buildTestBatch),
    ]);
    const created = x ?? y;
    expect([x, y].filter(Boolean).length).toBe(1);
    expect(created!.receipts.map((r) => r.seq)).toEqual([from, from + 1n, from + 2n]);
    expect(created!.batch).toMatchObject({ gateway, firstSeq: from, seqCount: 3n, receiptCount: 3 });
    const pending = await storage.receipts.pendingBatches();
    expect(pending.length).toBe(1);
    await storage.receipts.batchSettled(pending[0]!.id, { txHash: hex32(), block: 7n });
    const settled = await storage.receipts.getBatch(pending[0]!.id);
    expect(settled?.status).toBe('settled');
    expect(settled?.settledBlock).toBe(7n);
    const remaining = await storage.receipts.unsettledSpend(p);
    expect(remaining).toBe(60n - settled!.total);
    const rest = await storage.receipts.createBatch({ gateway, from: from + 3n, max: 10 }, buildTestBatch);
    expect(rest!.batch).toMatchObject({ firstSeq: from + 3n, seqCount: 2n, receiptCount: 2 });
    await storage.receipts.batchSettled(rest!.batch.id, { txHash: null, block: null });
  });

  test('a range stops below the lowest number in flight and covers numbers that got no receipt', async () => {
    const p = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' as Address;
    const from = (await storage.receiptNumbers.next(gateway))!;
    const first = await storeReceipt(3n, p);
    // A dispatch that failed without a receipt, one still in flight, then a receipt after it.
    const job = newJob(1n);
    await storage.transaction((tx) => storage.jobs.insert(tx, job));
    const failed = await storage.receiptNumbers.assign({
      gateway,
      jobId: job.id,
      worker,
      expiresAt: new Date(),
    });
    await storage.receiptNumbers.release(gateway, failed);
    const inflight = await storage.receiptNumbers.assign({
      gateway,
      jobId: job.id,
      worker,
      expiresAt: new Date(Date.now() + 60_000),
    });
    const after = await storeReceipt(4n, p);
    expect([first.seq, failed, inflight, after.seq]).toEqual([from, from + 1n, from + 2n, from + 3n]);
    const a = await storage.receipts.createBatch({ gateway, from, max: 10 }, buildTestBatch);
    expect(a!.receipts.map((r) => r.seq)).toEqual([from]);
    expect(a!.batch).toMatchObject({ firstSeq: from, seqCount: 2n });
    await storage.receipts.batchSettled(a!.batch.id, { txHash: null, block: null });
    // Nothing more until the number in flight ends.
    expect(
      await storage.receipts.createBatch({ gateway, from: from + 2n, max: 10 }, buildTestBatch),
    ).toBeUndefined();
    await storage.receiptNumbers.release(gateway, inflight);
    const b = await storage.receipts.createBatch({ gateway, from: from + 2n, max: 10 }, buildTestBatch);
    // Dispatch rows below the chain's frontier are pruned: the table holds only unsettled numbers.
    expect(await storage.receiptNumbers.status(gateway, failed)).toBeUndefined();
    expect(await storage.receiptNumbers.status(gateway, inflight)).toBe('failed');
    expect(b!.receipts.map((r) => r.seq)).toEqual([from + 3n]);
    expect(b!.batch).toMatchObject({ firstSeq: from + 2n, seqCount: 2n });
    await storage.receipts.batchSettled(b!.batch.id, { txHash: null, block: null });
  });

  test('a number in flight past its time is abandoned when a range passes it: its late receipt is refused', async () => {
    const p = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' as Address;
    const from = (await storage.receiptNumbers.next(gateway))!;
    const job = newJob(1n);
    await storage.transaction((tx) => storage.jobs.insert(tx, job));
    const late = await storage.receiptNumbers.assign({
      gateway,
      jobId: job.id,
      worker,
      expiresAt: new Date(Date.now() - 1_000),
    });
    const after = await storeReceipt(5n, p);
    const batch = await storage.receipts.createBatch({ gateway, from, max: 10 }, buildTestBatch);
    expect(batch!.batch).toMatchObject({ firstSeq: late, seqCount: 2n });
    expect(batch!.receipts.map((r) => r.seq)).toEqual([after.seq]);
    expect(await storage.receiptNumbers.status(gateway, late)).toBe('abandoned');
    expect(await storage.transaction((tx) => storage.receiptNumbers.take(tx, gateway, late))).toBe(false);
    // The worker's receipt for it arrives now: nothing is written, the job keeps its reservation.
    const lateReceipt: Receipt = { ...after, jobId: job.id, seq: late, fee: 1n };
    const committed = await storage.commitReceipt(
      { receipt: lateReceipt, signature: '0x01', signer: worker, leafHash: hex32() },
      job.id,
      {
        worker,
        operator: worker,
        fee: 1n,
        outputTokenIds: [4],
        outputText: 'a',
        sampler: 'aipg-sampler-v1',
        finishReason: 'stop',
        ttftMs: 1,
        totalMs: 1,
        tokensPerSecond: 1,
        firstTokenAt: null,
      },
    ).stored;
    expect(committed).toBe(false);
    expect(await storage.receipts.getByJob(job.id)).toBeUndefined();
    expect(await storage.jobs.get(job.id)).toMatchObject({
      status: job.status,
      reservedFee: job.reservedFee,
      fee: null,
    });
    await storage.receipts.batchSettled(batch!.batch.id, { txHash: null, block: null });
  });

  test("a batch that would pay nothing is not recorded; receipts below the chain's number are held out", async () => {
    const p = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' as Address;
    const from = (await storage.receiptNumbers.next(gateway))!;
    const r = await storeReceipt(0n, p);
    expect(await storage.receipts.createBatch({ gateway, from, max: 10 }, () => undefined)).toBeUndefined();
    expect(await storage.receipts.pendingBatches()).toEqual([]);
    // The chain says the range was settled elsewhere: the receipt can never settle.
    expect(
      await storage.receipts.createBatch({ gateway, from: from + 1n, max: 10 }, buildTestBatch),
    ).toBeUndefined();
    expect((await storage.receipts.getByJob(r.jobId))?.excluded).toMatch(
      /below the Grid's next receipt number/,
    );
    expect(await storage.receiptNumbers.next(gateway)).toBe(from + 1n);
  });

  test('a failed batch returns its receipts, holding out the blamed payer', async () => {
    const good = '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720' as Address;
    const bad = '0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f' as Address;
    // Settle whatever earlier tests left, so this batch holds only our receipts.
    for (const b of await storage.receipts.pendingBatches())
      await storage.receipts.batchSettled(b.id, { txHash: null, block: null });
    const from = (await storage.receiptNumbers.next(gateway))!;
    const r1 = await storeReceipt(5n, good);
    const r2 = await storeReceipt(7n, bad);
    const created = await storage.receipts.createBatch({ gateway, from, max: 10 }, buildTestBatch);
    expect(created?.receipts.length).toBe(2);
    await storage.receipts.batchFailed(created!.batch.id, {
      error: 'InsufficientDeposit',
      excludePayers: [bad],
      excludeWorkers: [],
      reason: 'InsufficientDeposit',
    });
    expect((await storage.receipts.getBatch(created!.batch.id))?.status).toBe('failed');
    expect((await storage.receipts.countWaiting(gateway)).unbatched).toBe(1);
    expect((await storage.receipts.getByJob(r1.jobId))?.batchId).toBeNull();
    expect((await storage.receipts.getByJob(r2.jobId))?.excluded).toBe('InsufficientDeposit');
    // The held-out receipt still counts against its payer.
    expect(await storage.receipts.unsettledSpend(bad)).toBe(7n);
  });

  test('idempotency: new, mismatch, in progress, done, release', async () => {
    const scope = 'payer:test';
    expect((await storage.idempotency.claim(scope, 'k1', 'f1', 60_000, 60, 'gw-a')).state).toBe('new');
    expect((await storage.idempotency.claim(scope, 'k1', 'f2', 60_000, 60, 'gw-a')).state).toBe('mismatch');
    expect((await storage.idempotency.claim(scope, 'k1', 'f1', 60_000, 60, 'gw-a')).state).toBe(
      'in_progress',
    );
    await storage.idempotency.complete(scope, 'k1', {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    const done = await storage.idempotency.claim(scope, 'k1', 'f1', 60_000, 60, 'gw-a');
    expect(done).toEqual({
      state: 'done',
      jobId: null,
      response: { status: 200, headers: { 'content-type': 'application/json' }, body: '{"a":1}' },
    });
    // A stale lock (its process died) is taken over.
    expect((await storage.idempotency.claim(scope, 'k2', 'f', 1, 60, 'gw-a')).state).toBe('new');
    await new Promise((r) => setTimeout(r, 20));
    expect((await storage.idempotency.claim(scope, 'k2', 'f', 60_000, 60, 'gw-a')).state).toBe('new');
    await storage.idempotency.release(scope, 'k2');
    expect((await storage.idempotency.claim(scope, 'k2', 'other', 60_000, 60, 'gw-a')).state).toBe('new');
  });

  test("idempotency: a lock of a dead process is taken over at once, a live one's is not", async () => {
    const scope = 'payer:instances';
    await storage.instances.beat('gw-live', 'host:1', 60_000);
    await storage.instances.beat('gw-doomed', 'host:2', 60_000);
    expect((await storage.idempotency.claim(scope, 'a', 'f', 600_000, 60, 'gw-live')).state).toBe('new');
    expect((await storage.idempotency.claim(scope, 'b', 'f', 600_000, 60, 'gw-doomed')).state).toBe('new');
    await storage.idempotency.setJob(scope, 'b', '0xjob');
    // both held by live processes, locks far from running out
    expect(await storage.idempotency.claim(scope, 'a', 'f', 600_000, 60, 'gw-other')).toEqual({
      state: 'in_progress',
      jobId: null,
      stale: false,
    });
    expect(await storage.idempotency.claim(scope, 'b', 'f', 600_000, 60, 'gw-other')).toMatchObject({
      stale: false,
    });
    // the same host and port restarted: its predecessor is dead now
    expect(await storage.instances.retireOthers('gw-restarted', 'host:2')).toEqual(['gw-doomed']);
    expect(await storage.idempotency.claim(scope, 'b', 'f', 600_000, 60, 'gw-restarted')).toEqual({
      state: 'in_progress',
      jobId: '0xjob',
      stale: true,
    });
    // a clean stop likewise; with no job started, the key is simply taken over
    await storage.instances.retire('gw-live');
    expect((await storage.idempotency.claim(scope, 'a', 'f', 600_000, 60, 'gw-other')).state).toBe('new');
    // a process that never beat (an older version, mid-upgrade) is never presumed dead: its lock decides
    expect((await storage.idempotency.claim(scope, 'c', 'f', 600_000, 60, 'gw-unknown')).state).toBe('new');
    expect(await storage.idempotency.claim(scope, 'c', 'f', 600_000, 60, 'gw-other')).toMatchObject({
      stale: false,
    });
  });

  test("reservations of one payer at once never together take more than the payer's funds", async () => {
    const p = '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc' as Address;
    // What jobs do when they insert a job (insertReserved): hold 30 more only if what is held plus 30 fits in 100, in one statement.
    const results = await Promise.all(
      Array.from({ length: 8 }, () => storage.jobs.insertReserved(newJob(30n, { payer: p }), 100n)),
    );
    expect(results.filter((r) => r.inserted)).toHaveLength(3);
    // A refusal says what was held when it was refused.
    expect(results.filter((r) => !r.inserted).every((r) => r.reserved === 90n && r.unsettled === 0n)).toBe(
      true,
    );
    expect(await storage.payerSpend(p)).toEqual({ unsettled: 0n, reserved: 90n });
  });

  test('reservations batched together decide as if one after another: a refused big one does not block a small one', async () => {
    const p = getAddress(`0x${randomBytes(20).toString('hex')}`);
    // The first runs alone; the next three wait for it and run as one statement.
    const results = await Promise.all(
      [30n, 80n, 50n, 30n].map((fee) => storage.jobs.insertReserved(newJob(fee, { payer: p }), 100n)),
    );
    // 30 fits; 80 would make 110; 50 makes 80 (not blocked by the refused 80); 30 more would make 110.
    expect(results.map((r) => r.inserted)).toEqual([true, false, true, false]);
    expect(results[1]).toEqual({ inserted: false, unsettled: 0n, reserved: 30n });
    expect(results[3]).toEqual({ inserted: false, unsettled: 0n, reserved: 80n });
    expect(await storage.payerSpend(p)).toEqual({ unsettled: 0n, reserved: 80n });
  });

  test("a reservation numbers its job's first dispatch in the same statement; a refused one takes no number", async () => {
    const p = getAddress(`0x${randomBytes(20).toString('hex')}`);
    const expiresAt = new Date(Date.now() + 60_000);
    const dispatch = { gateway, worker, expiresAt };
    const before = (await storage.receiptNumbers.next(gateway))!;
    // Alone, then four at once (one statement): 30 fits, 80 does not, 50 does, 30 does not (100 in all).
    const alone = await storage.jobs.insertReserved(newJob(10n, { payer: p }), 100n, dispatch);
    const jobs = [30n, 80n, 50n, 30n].map((fee) => newJob(fee, { payer: p }));
    const batched = await Promise.all(jobs.map((j) => storage.jobs.insertReserved(j, 100n, dispatch)));
    expect(alone).toMatchObject({ inserted: true, seq: before });
    expect(batched.map((r) => r.inserted)).toEqual([true, false, true, false]);
    // 10 + 30 held; 80 would pass 100; 50 fits (90); 30 more would not. Numbers only for what was inserted,
    // consecutive in the batch's order.
    expect(batched.filter((r) => !r.inserted).every((r) => r.seq === undefined)).toBe(true);
    const seq = batched[0]!.seq!;
    expect(seq).toBe(before + 1n);
    expect(batched[2]!.seq).toBe(before + 2n);
    expect(await storage.receiptNumbers.next(gateway)).toBe(before + 3n);
    expect(await storage.receiptNumbers.status(gateway, seq)).toBe('inflight');
    const [row] = await storage.db.query<{ job_id: string; worker: string }>(
      'SELECT job_id, worker FROM dispatches WHERE gateway = $1 AND seq = $2',
      [gateway, seq.toString()],
    );
    expect(row).toEqual({ job_id: jobs[0]!.id, worker });
    // Without a dispatch asked, no number is taken.
    const plain = await storage.jobs.insertReserved(newJob(1n, { payer: p }), 100n);
    expect(plain).toMatchObject({ inserted: true, seq: undefined });
    expect(await storage.receiptNumbers.next(gateway)).toBe(before + 3n);
  });

  test('reservations batched together with first dispatches get distinct consecutive numbers, in order', async () => {
    const expiresAt = new Date(Date.now() + 60_000);
    const payers = Array.from({ length: 6 }, () => getAddress(`0x${randomBytes(20).toString('hex')}`));
    const before = (await storage.receiptNumbers.next(gateway))!;
    // One more for another gateway address in the same batch: it gets no number here (taken later).
    const other = getAddress(`0x${randomBytes(20).toString('hex')}`);
    const results = await Promise.all([
      ...payers.map((p) =>
        storage.jobs.insertReserved(newJob(5n, { payer: p }), 100n, { gateway, worker, expiresAt }),
      ),
      storage.jobs.insertReserved(newJob(5n, { payer: payers[0]! }), 100n, {
        gateway: other,
        worker,
        expiresAt,
      }),
    ]);
    const seqs = results.slice(0, 6).map((r) => r.seq);
    // The first ran alone; the other five as one statement: all distinct, consecutive from `before`.
    expect(seqs).toEqual(Array.from({ length: 6 }, (_, i) => before + BigInt(i)));
    expect(results[6]).toMatchObject({ inserted: true, seq: undefined });
    expect(await storage.receiptNumbers.next(gateway)).toBe(before + 6n);
  });

  test("a payer's totals are what its jobs and receipts add up to after every kind of change", async () => {
    // The balance check reads the payer's row, kept by triggers: compare it with the sums it replaces.
    const p = getAddress(`0x${randomBytes(20).toString('hex')}`);
    const check = async (expected: { unsettled: bigint; reserved: bigint }) => {
      expect(await recomputedSpend(p)).toEqual(expected);
      expect(await storage.payerSpend(p)).toEqual(expected);
      // Any spelling of the address reads the same row.
      expect(await storage.payerSpend(p.toLowerCase() as Address)).toEqual(expected);
    };
    await check({ unsettled: 0n, reserved: 0n });
    // Reserved by a sync job and a queued async one (the lowercase spelling counts for the same payer).
    const running = newJob(40n, { payer: p });
    const queued = newJob(25n, { payer: p.toLowerCase() as Address, mode: 'async', status: 'queued' });
    await storage.transaction(async (tx) => {
      await storage.jobs.insert(tx, running);
      await storage.jobs.insert(tx, queued);
    });
    await check({ unsettled: 0n, reserved: 65n });
    // A failed job releases its reservation.
    await storage.jobs.fail(running.id, { code: 'worker_failed', message: 'x', status: 502 });
    await check({ unsettled: 0n, reserved: 25n });
    // A receipt: the job's reservation released, its fee unsettled.
    const r1 = await storeReceipt(7n, p);
    const r2 = await storeReceipt(11n, p);
    await check({ unsettled: 18n, reserved: 25n });
    expect(r1.payer).toBe(p);
    // The queued job claimed, then its lease expired: requeued, still reserved; failed: released.
    await storage.jobs.claimQueued('gw-x', new Date(Date.now() - 1), 100);
    await check({ unsettled: 18n, reserved: 25n });
    await storage.jobs.fail(queued.id, { code: 'worker_failed', message: 'x', status: 502 });
    await check({ unsettled: 18n, reserved: 0n });
    // Settled: no longer carried.
    await storage.db.query('UPDATE receipts SET settled = true WHERE job_id = $1', [r2.jobId]);
    await check({ unsettled: 7n, reserved: 0n });
    await storage.db.query('UPDATE receipts SET settled = true WHERE job_id = $1', [r1.jobId]);
    await check({ unsettled: 0n, reserved: 0n });
  });

  test('one statement changing rows of several payers moves each total by exactly its own rows', async () => {
    // The totals are kept per statement (migration 10): each payer's share of a many-row insert, update
    // or delete, including a row moved from one payer to another and amounts that cancel out.
    const [a, b, c] = [0, 1, 2].map(() => getAddress(`0x${randomBytes(20).toString('hex')}`));
    const check = async (expected: Record<string, { unsettled: bigint; reserved: bigint }>) => {
      for (const [who, want] of Object.entries(expected)) {
        expect(await recomputedSpend(who as Address)).toEqual(want);
        expect(await storage.payerSpend(who as Address)).toEqual(want);
      }
    };
    const ids = Array.from({ length: 5 }, () => hex32());
    // One insert: three jobs of a (two spellings), one of b, one of c that holds nothing (succeeded).
    await storage.db.query(
      `INSERT INTO jobs (id, kind, mode, api_key_id, payer, model_id, model_name, request, params, pricing, status, reserved_fee)
       SELECT id, 'chat', 'sync', 'ktestkey00001', payer, '0x', 'm', '{}', '{}', '{}', status, fee
       FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[]) AS t(id, payer, status, fee)`,
      [
        ids,
        [a, a!.toLowerCase(), a, b, c],
        ['running', 'queued', 'running', 'running', 'succeeded'],
        [10, 20, 30, 40, 50],
      ],
    );
    await check({
      [a!]: { unsettled: 0n, reserved: 60n },
      [b!]: { unsettled: 0n, reserved: 40n },
      [c!]: { unsettled: 0n, reserved: 0n },
    });
    // One update: a's first job ends, its second moves to b, b's job grows by what a's third shrinks.
    await storage.db.query(
      `UPDATE jobs SET
         status = CASE WHEN id = $1 THEN 'succeeded' ELSE status END,
         payer = CASE WHEN id = $2 THEN $6 ELSE payer END,
         reserved_fee = CASE WHEN id = $3 THEN reserved_fee - 5 WHEN id = $4 THEN reserved_fee + 5 ELSE reserved_fee END
       WHERE id IN ($1, $2, $3, $4, $5)`,
      [ids[0], ids[1], ids[2], ids[3], ids[4], b],
    );
    await check({
      [a!]: { unsettled: 0n, reserved: 25n },
      [b!]: { unsettled: 0n, reserved: 65n },
      [c!]: { unsettled: 0n, reserved: 0n },
    });
    // Receipts of all three in one insert; one statement settles a's and c's; one delete removes b's.
    await storage.db.query(
      `INSERT INTO receipts (job_id, seq, gateway, payer, worker, model_id, request_hash, output_hash, input_units,
         output_units, fee, completed_at, confidential, signature, signer, leaf_hash)
       SELECT id, seq, 'multi-payer-test', payer, 'w', 'm', 'r', 'o', 1, 1, fee, 1, false, 's', 's', 'l'
       FROM unnest($1::text[], $2::numeric[], $3::text[], $4::numeric[]) AS t(id, seq, payer, fee)`,
      [ids.slice(0, 4), [1, 2, 3, 4], [a, b, a, c], [7, 8, 9, 10]],
    );
    await check({
      [a!]: { unsettled: 16n, reserved: 25n },
      [b!]: { unsettled: 8n, reserved: 65n },
      [c!]: { unsettled: 10n, reserved: 0n },
    });
    await storage.db.query(
      `UPDATE receipts SET settled = true WHERE gateway = 'multi-payer-test' AND payer <> $1`,
      [b],
    );
    await storage.db.query(`DELETE FROM receipts WHERE gateway = 'multi-payer-test' AND payer = $1`, [b]);
    await check({
      [a!]: { unsettled: 0n, reserved: 25n },
      [b!]: { unsettled: 0n, reserved: 65n },
      [c!]: { unsettled: 0n, reserved: 0n },
    });
    // One delete of every job (their settled receipts first): what they held is released.
    await storage.db.query(`DELETE FROM receipts WHERE gateway = 'multi-payer-test'`);
    await storage.db.query('DELETE FROM jobs WHERE id = ANY($1::text[])', [ids]);
    await check({
      [a!]: { unsettled: 0n, reserved: 0n },
      [b!]: { unsettled: 0n, reserved: 0n },
      [c!]: { unsettled: 0n, reserved: 0n },
    });
  });

  test("migration 7 starts each payer's totals from what its jobs in flight and unsettled receipts hold", async () => {
    // A database as migration 6 left it, with a job in flight and receipts in both spellings of a payer.
    const old = await openDatabase({ url: undefined, dir: 'memory://', schema: 'public', poolSize: 1 });
    try {
      await old.query('CREATE TABLE gateway_migrations (id integer PRIMARY KEY, name text NOT NULL)');
      for (const m of migrations.filter((m) => m.id < 7)) {
        for (const statement of splitStatements(m.sql)) await old.query(statement);
        await old.query('INSERT INTO gateway_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      }
      const p = payer.toLowerCase();
      await old.query(
        `INSERT INTO api_keys (id, key_hash, payer, nonce, message, signature) VALUES ('k', 'h', $1, 'n', 'm', '0x')`,
        [payer],
      );
      const job = (id: string, status: string, fee: number, who: string) =>
        old.query(
          `INSERT INTO jobs (id, kind, mode, api_key_id, payer, model_id, model_name, request, params, pricing, status, reserved_fee)
           VALUES ($1, 'chat', 'sync', 'k', $2, '0x', 'm', '{}', '{}', '{}', $3, $4)`,
          [id, who, status, fee],
        );
      const receipt = (jobId: string, seq: number, fee: number, settled: boolean, who: string) =>
        old.query(
          `INSERT INTO receipts (job_id, seq, gateway, payer, worker, model_id, request_hash, output_hash, input_units,
             output_units, fee, completed_at, confidential, signature, signer, leaf_hash, settled)
           VALUES ($1, $2, 'g', $3, 'w', 'm', 'r', 'o', 1, 1, $4, 1, false, 's', 's', 'l', $5)`,
          [jobId, seq, who, fee, settled],
        );
      await job('a', 'running', 50, payer);
      await job('b', 'queued', 20, p);
      await job('c', 'succeeded', 0, payer);
      await job('d', 'succeeded', 0, p);
      await job('e', 'succeeded', 0, payer);
      await receipt('c', 1, 7, false, payer);
      await receipt('d', 2, 9, false, p);
      await receipt('e', 3, 100, true, payer);
      expect(await migrate(old)).toEqual([7, 8, 9, 10, 11]);
      expect(await payerSpend(old, payer)).toEqual({ unsettled: 16n, reserved: 70n });
    } finally {
      await old.close();
    }
  });

  test('statements issued at once each get their own result or error; the others commit', async () => {
    // On PGlite these run as one group commit (storage/db.ts); a failing one must not take the rest down.
    await storage.db.query('CREATE TABLE group_commit_test (id integer PRIMARY KEY)');
    const outcomes = await Promise.allSettled(
      [1, 2, 2, 3, 4].map((id) =>
        storage.db.query<{ id: number }>('INSERT INTO group_commit_test (id) VALUES ($1) RETURNING id', [id]),
      ),
    );
    // Exactly one of the two inserts of 2 fails (on a server pool they race; in a group, the second).
    const status = outcomes.map((o) => o.status);
    expect([status[0], status[3], status[4]]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect([status[1], status[2]].sort()).toEqual(['fulfilled', 'rejected']);
    const ids = outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value.map((r) => Number(r.id)) : []));
    expect(ids.sort()).toEqual([1, 2, 3, 4]);
    const rows = await storage.db.query<{ id: number }>('SELECT id FROM group_commit_test ORDER BY id');
    expect(rows.map((r) => Number(r.id))).toEqual([1, 2, 3, 4]);
  });

  test('a batch op runs the items waiting together as one statement; a failing item fails alone', async () => {
    await storage.db.query('CREATE TABLE batch_op_test (id integer PRIMARY KEY)');
    const sizes: number[] = [];
    // Inserts every item in one statement; returns each item's id.
    const insert: BatchOp<number, number> = {
      name: 'test insert',
      async run(sql, items) {
        sizes.push(items.length);
        const rows = await sql.query<{ id: number }>(
          'INSERT INTO batch_op_test (id) SELECT unnest($1::int[]) RETURNING id',
          [items],
        );
        return items.map((i) => Number(rows.find((r) => Number(r.id) === i)?.id));
      },
    };
    const first = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => storage.db.batch(insert, i)));
    expect(first).toEqual([1, 2, 3, 4, 5, 6]);
    // Issued in the same turn: all six in one statement.
    expect(sizes).toEqual([6]);
    // 3 exists: the group's statement fails, every item runs again alone: only 3 fails.
    sizes.length = 0;
    const second = await Promise.allSettled([7, 8, 9, 3, 10].map((i) => storage.db.batch(insert, i)));
    expect(second.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(sizes).toEqual([5, 1, 1, 1, 1, 1]);
    const rows = await storage.db.query<{ id: number }>('SELECT id FROM batch_op_test ORDER BY id');
    expect(rows.map((r) => Number(r.id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  test('migrations split on semicolons outside dollar-quoted bodies only', () => {
    expect(
      splitStatements(
        'CREATE TABLE a (x int);\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN x; y; END $$;  SELECT 1; ',
      ),
    ).toEqual([
      'CREATE TABLE a (x int)',
      'CREATE FUNCTION f() RETURNS int AS $$ BEGIN x; y; END $$',
      'SELECT 1',
    ]);
  });

  test('concurrent claims of one key: exactly one wins', async () => {
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => storage.idempotency.claim('payer:race', 'k', 'f', 60_000, 60, 'gw-a')),
    );
    expect(claims.filter((c) => c.state === 'new').length).toBe(1);
  });

  test('leases: one holder at a time, expiry hands over', async () => {
    expect(await storage.leases.acquire('l', 'a', 60_000)).toBe(true);
    expect(await storage.leases.acquire('l', 'b', 60_000)).toBe(false);
    expect(await storage.leases.acquire('l', 'a', 1)).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(await storage.leases.acquire('l', 'b', 60_000)).toBe(true);
    await storage.leases.release('l', 'b');
    expect(await storage.leases.acquire('l', 'a', 60_000)).toBe(true);
  });

  test('async jobs: claimed once, expired leases requeue async and fail sync jobs', async () => {
    const q1 = newJob(1n, { mode: 'async', status: 'queued', leaseUntil: null, instanceId: null });
    const s1 = newJob(1n, { leaseUntil: new Date(Date.now() - 1_000) });
    await storage.transaction(async (tx) => {
      await storage.jobs.insert(tx, q1);
      await storage.jobs.insert(tx, s1);
    });
    const [c1, c2] = await Promise.all([
      storage.jobs.claimQueued('i1', new Date(Date.now() - 1_000), 10),
      storage.jobs.claimQueued('i2', new Date(Date.now() - 1_000), 10),
    ]);
    expect([...c1, ...c2].filter((j) => j.id === q1.id).length).toBe(1);
    const r = await storage.jobs.recoverExpired();
    expect(r.requeued).toBeGreaterThanOrEqual(1);
    expect(r.failed).toBeGreaterThanOrEqual(1);
    expect((await storage.jobs.get(q1.id))?.status).toBe('queued');
    expect((await storage.jobs.get(s1.id))?.status).toBe('failed');
  });

  test('the periodic recovery: leases lapsed since the last pass, and the jobs of processes found dead since', async () => {
    const [clock] = await storage.db.query<{ at: Date }>('SELECT now() AS at');
    const now = new Date(clock!.at).getTime();
    await storage.instances.beat('gw-periodic-live', 'host:7', 60_000);
    await storage.instances.beat('gw-periodic-dead', 'host:8', 60_000);
    // Lapsed before the last pass (that pass took it, or it is someone else's to find at start).
    const old = newJob(1n, { leaseUntil: new Date(now - 120_000), instanceId: 'gw-periodic-live' });
    // Lapsed since the last pass.
    const lapsed = newJob(1n, { leaseUntil: new Date(now - 5_000), instanceId: 'gw-periodic-live' });
    const asyncLapsed = newJob(1n, {
      mode: 'async',
      leaseUntil: new Date(now - 5_000),
      instanceId: 'gw-periodic-live',
    });
    // Leased for long, but its process is gone: taken now, not when the lease runs out.
    const orphan = newJob(1n, { leaseUntil: new Date(now + 3_600_000), instanceId: 'gw-periodic-dead' });
    // Leased, its process alive: left alone.
    const alive = newJob(1n, { leaseUntil: new Date(now + 3_600_000), instanceId: 'gw-periodic-live' });
    await storage.transaction(async (tx) => {
      for (const j of [old, lapsed, asyncLapsed, orphan, alive]) await storage.jobs.insert(tx, j);
    });
    await storage.instances.retire('gw-periodic-dead');
    expect(await storage.instances.dead()).toContain('gw-periodic-dead');
    const r = await storage.jobs.recoverSince(new Date(now - 60_000), ['gw-periodic-dead']);
    expect(r.at.getTime()).toBeGreaterThanOrEqual(now);
    expect((await storage.jobs.get(lapsed.id))?.status).toBe('failed');
    expect((await storage.jobs.get(asyncLapsed.id))?.status).toBe('queued');
    expect((await storage.jobs.get(orphan.id))?.status).toBe('failed');
    expect((await storage.jobs.get(alive.id))?.status).toBe('running');
    expect((await storage.jobs.get(old.id))?.status).toBe('running');
    // The pass over every running job (at start) takes what lapsed before any periodic pass saw it.
    await storage.jobs.recoverExpired();
    expect((await storage.jobs.get(old.id))?.status).toBe('failed');
    expect((await storage.jobs.get(alive.id))?.status).toBe('running');
    // One job at a time (a stale idempotency claim): only that one.
    const one = newJob(1n, { leaseUntil: new Date(now - 1_000), instanceId: 'gw-periodic-live' });
    const other = newJob(1n, { leaseUntil: new Date(now - 1_000), instanceId: 'gw-periodic-live' });
    await storage.transaction(async (tx) => {
      await storage.jobs.insert(tx, one);
      await storage.jobs.insert(tx, other);
    });
    expect(await storage.jobs.recoverExpired(one.id)).toEqual({ requeued: 0, failed: 1 });
    expect((await storage.jobs.get(other.id))?.status).toBe('running');
    await storage.jobs.recoverExpired();
  });

  test('audit request signatures are single use', async () => {
    const exp = new Date(Date.now() + 60_000);
    expect(await storage.auditNonces.use('0xabc', exp)).toBe(true);
    expect(await storage.auditNonces.use('0xabc', exp)).toBe(false);
  });
});
