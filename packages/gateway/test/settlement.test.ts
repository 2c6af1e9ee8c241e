import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  approveToken,
  deposit,
  getNextReceiptSeq,
  gridAbi,
  increaseGatewayCap,
  requestDepositWithdrawal,
  settleBatch,
  withdrawDeposit,
} from '@aipg/chain';
import { buildReceiptTree, parseAipg } from '@aipg/core';
import { type Address, createTestClient, type Hex, http } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  aggregate,
  createLogger,
  createStorage,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

let grid: TestGrid;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  grid = await startTestGrid();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await grid?.stop();
});

const read = <T>(functionName: string, args: readonly unknown[] = []) =>
  grid.publicClient.readContract({
    address: grid.grid,
    abi: gridAbi,
    functionName,
    args,
  } as never) as Promise<T>;

const depositOf = async (payer: Address) => (await read<{ balance: bigint }>('depositOf', [payer])).balance;

/** A gateway on a persistent database (a PGlite directory, or one schema on DATABASE_URL) that survives restarts. */
function persistentOverrides(): Record<string, unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'aipg-gw-'));
  const schema = `gw_settle_${randomBytes(5).toString('hex')}`;
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { databaseDir: dir, databaseSchema: process.env.DATABASE_URL ? schema : undefined };
}

async function start(
  overrides: Record<string, unknown>,
): Promise<{ gw: StartGatewayReturnType; worker: ScriptedWorker }> {
  const options = testGatewayOptions(grid, overrides);
  const gw = await startGateway(options, { logger: createLogger(options.log.level) });
  const worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  await worker.connect();
  return { gw, worker };
}

const nextSeq = () =>
  getNextReceiptSeq(grid.publicClient, { grid: grid.grid, gateway: roles.gateway.address });

const build = (receipts: Parameters<typeof aggregate>[0]) => {
  const tree = buildReceiptTree(receipts.map((r) => r.receipt));
  return { root: tree.root as Hex, total: aggregate(receipts).total };
};

async function stop(x: { gw: StartGatewayReturnType; worker: ScriptedWorker }) {
  await x.worker.close();
  await x.gw.stop();
}

async function complete(gw: StartGatewayReturnType, key: string, n: number): Promise<bigint> {
  let total = 0n;
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL.name, prompt: `prompt ${i}`, max_tokens: 3 }),
    });
    expect(res.status).toBe(200);
    total += BigInt(((await res.json()) as { grid: { fee_wei: string } }).grid.fee_wei);
  }
  return total;
}

describe('settlement', () => {
  test('receipts settle on chain in capped batches: payer debited, worker credited, nothing left unsettled', async () => {
    const x = await start({ 'settlement.maxBatchSize': 2 });
    try {
      const key = await createApiKey(x.gw, roles.payer.privateKey);
      const before = await depositOf(roles.payer.address);
      const batchesBefore = await read<bigint>('batchCount');
      const earningsBefore = await read<bigint>('earningsOf', [roles.workerA.address]);
      const spent = await complete(x.gw, key, 5);
      await x.gw.settleNow();
      expect(await read<bigint>('batchCount')).toBe(batchesBefore + 3n);
      expect(await depositOf(roles.payer.address)).toBe(before - spent);
      const earned = (await read<bigint>('earningsOf', [roles.workerA.address])) - earningsBefore;
      expect(earned).toBeGreaterThan(0n);
      expect(earned).toBeLessThanOrEqual(spent);
      const bal = (await (
        await fetch(`${x.gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        unsettled: { wei: string };
      };
      expect(bal.unsettled.wei).toBe('0');
      const m = await (await fetch(`${x.gw.url}/metrics`)).text();
      expect(m).toContain('aipg_gateway_settlement_batches_total{status="settled"} 3');
    } finally {
      await stop(x);
      await dropTestSchema(x.gw.common.options);
    }
  });

  test('the loop settles by itself once enough receipts wait', async () => {
    const x = await start({ 'settlement.minReceipts': 2, 'settlement.intervalMs': 100 });
    try {
      const key = await createApiKey(x.gw, roles.payer.privateKey);
      const batchesBefore = await read<bigint>('batchCount');
      await complete(x.gw, key, 2);
      for (let i = 0; i < 60 && (await read<bigint>('batchCount')) === batchesBefore; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(await read<bigint>('batchCount')).toBe(batchesBefore + 1n);
    } finally {
      await stop(x);
      await dropTestSchema(x.gw.common.options);
    }
  });

  test('receipts carry the numbers they were dispatched with; batches settle contiguous ranges in order', async () => {
    const x = await start({ 'settlement.maxBatchSize': 2 });
    try {
      const key = await createApiKey(x.gw, roles.payer.privateKey);
      const from = await nextSeq();
      await complete(x.gw, key, 3);
      expect(x.worker.jobs.map((j) => BigInt(j.seq!))).toEqual([from, from + 1n, from + 2n]);
      await x.gw.settleNow();
      expect(await nextSeq()).toBe(from + 3n);
      const count = await read<bigint>('batchCount');
      const last = await Promise.all(
        [count - 1n, count].map((id) => read<{ firstSeq: bigint; receiptCount: number }>('getBatch', [id])),
      );
      expect(last.map((b) => [b.firstSeq, b.receiptCount])).toEqual([
        [from, 2],
        [from + 2n, 1],
      ]);
    } finally {
      await stop(x);
      await dropTestSchema(x.gw.common.options);
    }
  });

  test('after a restart, a pending batch that landed is recorded, not resent; the rest settles once', async () => {
    const db = persistentOverrides();
    // First life: settlement off, so receipts pile up unsettled when it stops.
    const first = await start({ ...db, 'settlement.enabled': false });
    const key = await createApiKey(first.gw, roles.payer.privateKey);
    const spent = await complete(first.gw, key, 6);
    const options = first.gw.common.options;
    await stop(first);

    // Crash simulation: a batch recorded as pending and sent, the gateway died before recording it settled.
    const from = await nextSeq();
    const storage = await createStorage({ common: { options, logger: createLogger('silent') } });
    const sent = await storage.receipts.createBatch({ gateway: roles.gateway.address, from, max: 2 }, build);
    await storage.close();
    expect(sent?.batch).toMatchObject({ firstSeq: from, seqCount: 2n });
    const { debits, credits } = aggregate(sent!.receipts);
    await settleBatch(grid.client(roles.gateway.privateKey), {
      grid: grid.grid,
      root: sent!.batch.root,
      firstSeq: from,
      receiptCount: 2,
      debits,
      credits,
    });

    const depositBefore = await depositOf(roles.payer.address);
    const batchesBefore = await read<bigint>('batchCount');
    // Second life: finds the pending batch settled, then settles the four receipts never batched.
    const second = await start({ ...db });
    try {
      await second.gw.settleNow();
      expect(await read<bool>('isSettled', [sent!.batch.root])).toBe(true);
      expect(await read<bigint>('batchCount')).toBe(batchesBefore + 1n);
      expect(await nextSeq()).toBe(from + 6n);
      const sentDebit = debits.reduce((s, d) => s + d.amount, 0n);
      expect(depositBefore - (await depositOf(roles.payer.address))).toBe(spent - sentDebit);
      // Idempotent: another pass settles nothing more.
      await second.gw.settleNow();
      expect(await read<bigint>('batchCount')).toBe(batchesBefore + 1n);
      // New jobs continue the numbering after the restart.
      await complete(second.gw, key, 1);
      expect(BigInt(second.worker.jobs.at(-1)!.seq!)).toBe(from + 6n);
    } finally {
      await stop(second);
      await dropTestSchema(options);
    }
  });

  test('a range the chain settled under another root is reconciled (SequenceMismatch), never settled twice', async () => {
    const db = persistentOverrides();
    const first = await start({ ...db, 'settlement.enabled': false });
    const key = await createApiKey(first.gw, roles.payer.privateKey);
    await complete(first.gw, key, 3);
    const options = first.gw.common.options;
    await stop(first);

    // A pending batch over the first two numbers; meanwhile the chain settled those numbers under another
    // root (a batch this database never recorded: a restored backup, another replica's database).
    const from = await nextSeq();
    const storage = await createStorage({ common: { options, logger: createLogger('silent') } });
    const pending = await storage.receipts.createBatch(
      { gateway: roles.gateway.address, from, max: 2 },
      build,
    );
    const [firstReceipt] = pending!.receipts;
    const elsewhere = aggregate([firstReceipt!]);
    await settleBatch(grid.client(roles.gateway.privateKey), {
      grid: grid.grid,
      root: buildReceiptTree([firstReceipt!.receipt]).root as Hex,
      firstSeq: from,
      receiptCount: 2,
      debits: elsewhere.debits,
      credits: elsewhere.credits,
    });
    await storage.close();

    const batchesBefore = await read<bigint>('batchCount');
    const second = await start({ ...db });
    try {
      await second.gw.settleNow();
      // The pending batch was given up (not resent); only the third receipt settled, from the chain's number.
      expect(await read<bool>('isSettled', [pending!.batch.root])).toBe(false);
      expect(await read<bigint>('batchCount')).toBe(batchesBefore + 1n);
      expect(await nextSeq()).toBe(from + 3n);
    } finally {
      await stop(second);
    }
    const after = await createStorage({ common: { options, logger: createLogger('silent') } });
    try {
      const gave = await after.receipts.getBatch(pending!.batch.id);
      expect(gave?.status).toBe('failed');
      expect(gave?.lastError).toMatch(/SequenceMismatch/);
      const held = await after.receipts.getByJob(pending!.receipts[1]!.receipt.jobId);
      expect(held?.excluded).toMatch(/below the Grid's next receipt number/);
      expect(held?.settled).toBe(false);
    } finally {
      await after.close();
      await dropTestSchema(options);
    }
  });

  test('a payer whose deposit left is held out; everyone else still settles', async () => {
    const x = await start({});
    const test = createTestClient({ mode: 'anvil', transport: http(grid.rpcUrl) });
    try {
      const leaver = grid.client(roles.poorPayer.privateKey);
      await approveToken(leaver, {
        token: grid.chain.deployment.token,
        spender: grid.grid,
        amount: parseAipg('1'),
      });
      await deposit(leaver, { grid: grid.grid, amount: parseAipg('1') });
      await increaseGatewayCap(leaver, {
        grid: grid.grid,
        gateway: roles.gateway.address,
        amount: parseAipg('1'),
      });
      const leaverKey = await createApiKey(x.gw, roles.poorPayer.privateKey);
      const payerKey = await createApiKey(x.gw, roles.payer.privateKey);
      await complete(x.gw, leaverKey, 1);
      const paid = await complete(x.gw, payerKey, 1);
      // The leaver withdraws everything before the gateway settles.
      await requestDepositWithdrawal(leaver, { grid: grid.grid, amount: parseAipg('1') });
      await test.increaseTime({ seconds: 3600 });
      await test.mine({ blocks: 1 });
      await withdrawDeposit(leaver, { grid: grid.grid });
      const before = await depositOf(roles.payer.address);
      await x.gw.settleNow();
      expect(await depositOf(roles.payer.address)).toBe(before - paid);
      const m = await (await fetch(`${x.gw.url}/metrics`)).text();
      expect(m).toContain('aipg_gateway_settlement_batches_total{status="failed"} 1');
      // The leaver's debt still counts against it: no more requests.
      const res = await fetch(`${x.gw.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${leaverKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL.name, prompt: 'again', max_tokens: 3 }),
      });
      expect(res.status).toBe(402);
    } finally {
      await stop(x);
      await dropTestSchema(x.gw.common.options);
    }
  });

  test('graceful stop finishes the job in flight, then flushes settlement', async () => {
    const x = await start({});
    const key = await createApiKey(x.gw, roles.payer.privateKey);
    x.worker.opts.script = () => ({ tokenDelayMs: 150 });
    const batchesBefore = await read<bigint>('batchCount');
    const inflight = fetch(`${x.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL.name,
        messages: [{ role: 'user', content: 'slow' }],
        max_tokens: 5,
      }),
    });
    // Stop only once the job is on the worker (the request is in flight, not merely sent).
    for (let i = 0; i < 200 && x.worker.jobs.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(x.worker.jobs.length).toBe(1);
    const stopping = x.gw.stop();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(
      ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content,
    ).toBe('the grid serves you.');
    await stopping;
    await x.worker.close();
    expect(await read<bigint>('batchCount')).toBe(batchesBefore + 1n);
    await dropTestSchema(x.gw.common.options);
  });
});

type bool = boolean;
