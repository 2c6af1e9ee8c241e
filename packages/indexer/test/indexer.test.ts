import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  approveToken,
  createGridClients,
  deposit,
  increaseBond,
  requestUnbond,
  settleBatch,
} from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { type Hex, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Database } from '../../gateway/test/helpers/database.ts';
import { MODEL, MODEL_ID, roles, startTestGrid, type TestGrid } from '../../gateway/test/helpers/grid.ts';
import { createNetwork, type Network } from '../src/index.ts';
import { installSlashHarness, openTestDb, readEvents, recordingClient, rpc } from './helpers.ts';

let grid: TestGrid;
const opened: { network: Network; db: Database }[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  grid = await startTestGrid();
});

afterAll(async () => {
  for (const o of opened) {
    await o.network.stop();
    await o.db.close();
  }
  await grid?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function open(dir = 'memory://', maxBlockRange = 4) {
  const db = await openTestDb(dir);
  const rec = recordingClient(grid.rpcUrl);
  const network = createNetwork({
    db,
    publicClient: rec.client,
    deployment: {
      grid: grid.grid,
      chainId: grid.chain.anvil.chainId,
      deployBlock: grid.chain.deployment.deployBlock,
    },
    options: { indexer: { maxBlockRange }, cacheMs: 0 },
  });
  await network.migrate();
  const o = { network, db, calls: rec.calls };
  opened.push(o);
  return o;
}

async function close(o: { network: Network; db: Database }) {
  await o.network.stop();
  await o.db.close();
  opened.splice(opened.indexOf(o), 1);
}

async function get<T = Record<string, unknown>>(network: Network, path: string): Promise<T> {
  const res = await network.router.request(path);
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return (await res.json()) as T;
}

type Workers = {
  data: {
    address: string;
    stake: { wei: string; display: string };
    unbonding: { wei: string };
    unbond_seconds_left: number | null;
    operator: string;
    active: boolean;
    slashes: { count: number; amount: { wei: string } };
    earnings: { available: { wei: string } };
  }[];
};

const client = (key: Hex) => grid.client(key);

describe('network indexer on anvil', () => {
  test('indexes bonds, models and the premium from the deployment block, in bounded ranges', async () => {
    const { network, calls } = await open();
    await network.indexer.syncNow();

    const status = network.indexer.status();
    expect(status.fromBlock).toBe(grid.chain.deployment.deployBlock);
    expect(status.indexedBlock).toBe(status.headBlock);
    const ranges = calls.filter((c) => c.method === 'eth_getLogs');
    expect(ranges.length).toBeGreaterThan(1);
    for (const c of ranges) {
      const [{ fromBlock, toBlock }] = c.params as [{ fromBlock: Hex; toBlock: Hex }];
      expect(Number(toBlock) - Number(fromBlock)).toBeLessThan(4);
    }

    const workers = await get<Workers>(network, '/workers');
    const byAddress = Object.fromEntries(workers.data.map((w) => [w.address, w]));
    expect(byAddress[roles.workerA.address]?.stake.wei).toBe(parseAipg('1000').toString());
    expect(byAddress[roles.workerA.address]?.stake.display).toBe('1,000');
    expect(byAddress[roles.workerA.address]?.operator).toBe(roles.operatorA.address);
    expect(byAddress[roles.workerB.address]?.stake.wei).toBe(parseAipg('4000').toString());
    expect(byAddress[roles.workerB.address]?.active).toBe(true);

    const validators = await get<Workers>(network, '/validators');
    expect(validators.data).toHaveLength(1);
    expect(validators.data[0]?.address).toBe(roles.validator.address);
    expect(validators.data[0]?.stake.wei).toBe(parseAipg('10000').toString());

    const models = await get<{
      confidential_premium_bps: number;
      data: { id: string; name: string; rates: Record<string, { wei: string; aipg: string }> }[];
    }>(network, '/models');
    expect(models.confidential_premium_bps).toBe(2500);
    const m = models.data.find((x) => x.id === MODEL_ID);
    expect(m?.name).toBe(MODEL.name);
    expect(m?.rates.input_per_m?.aipg).toBe('1');
    expect(m?.rates.output_per_m?.wei).toBe(parseAipg('2').toString());
    expect(m?.rates.confidential_output_per_m?.aipg).toBe('2.5');

    const activity = await get<{ data: { type: string; account: string }[] }>(network, '/activity?limit=200');
    expect(activity.data.filter((i) => i.type === 'bonded').map((i) => i.account)).toEqual(
      expect.arrayContaining([roles.workerA.address, roles.workerB.address, roles.validator.address]),
    );
    expect(activity.data.some((i) => i.type === 'model_registered')).toBe(true);
  });

  test('a settled batch credits earnings and shows in the activity feed and the summary', async () => {
    const { network } = await open();
    const root = keccak256(toHex('network test batch 1'));
    const fee = parseAipg('0.5');
    await settleBatch(client(roles.gateway.privateKey), {
      grid: grid.grid,
      root,
      firstSeq: 0n,
      receiptCount: 3,
      debits: [{ payer: roles.payer.address, amount: fee }],
      credits: [{ worker: roles.workerA.address, gross: fee }],
    });
    await network.indexer.syncNow();

    const activity = await get<{
      data: { type: string; batch_id: string; amount: { aipg: string }; details: { receiptCount: number } }[];
    }>(network, '/activity?kind=batch');
    expect(activity.data[0]?.type).toBe('batch_settled');
    expect(activity.data[0]?.amount.aipg).toBe('0.5');
    expect(activity.data[0]?.details.receiptCount).toBe(3);

    const workers = await get<Workers>(network, '/workers');
    const a = workers.data.find((w) => w.address === roles.workerA.address);
    expect(a?.earnings.available.wei).toBe(((fee * 8_000n) / 10_000n).toString());

    const summary = await get<{ settlement: { batches: number; last_batch: { receipts: number } } }>(
      network,
      '/summary',
    );
    expect(summary.settlement.batches).toBe(1);
    expect(summary.settlement.last_batch.receipts).toBe(3);
  });

  test('resumes after a restart from where it stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aipg-network-'));
    dirs.push(dir);
    const first = await open(dir);
    await first.network.indexer.syncNow();
    const before = first.network.indexer.status().indexedBlock!;
    const eventsBefore = (
      await first.db.query<{ n: number }>('SELECT count(*)::int AS n FROM network_events')
    )[0]!.n;
    await close(first);

    await requestUnbond(client(roles.workerA.privateKey), {
      grid: grid.grid,
      role: 'worker',
      amount: parseAipg('1000'),
    });

    const second = await open(dir);
    await second.network.indexer.syncNow();
    const ranges = second.calls.filter((c) => c.method === 'eth_getLogs');
    const [{ fromBlock }] = ranges[0]!.params as [{ fromBlock: Hex }];
    expect(Number(fromBlock)).toBe(before + 1);
    const eventsAfter = (
      await second.db.query<{ n: number }>('SELECT count(*)::int AS n FROM network_events')
    )[0]!.n;
    expect(eventsAfter).toBe(eventsBefore + 1);

    const workers = await get<Workers>(second.network, '/workers');
    const a = workers.data.find((w) => w.address === roles.workerA.address)!;
    expect(a.stake.wei).toBe('0');
    expect(a.unbonding.wei).toBe(parseAipg('1000').toString());
    expect(a.active).toBe(false);
    expect(a.unbond_seconds_left).toBeGreaterThan(0);
    expect(a.unbond_seconds_left).toBeLessThanOrEqual(30);
    await close(second);
  });

  test('with follow: false it never follows the chain: it serves what the process that does stored', async () => {
    const { network: follower, db } = await open();
    const rec = recordingClient(grid.rpcUrl);
    const reader = createNetwork({
      db,
      publicClient: rec.client,
      deployment: { grid: grid.grid, chainId: grid.chain.anvil.chainId },
      follow: false,
      options: { cacheMs: 0 },
    });
    await reader.migrate();
    await reader.indexer.syncNow(); // before the follower's first range: nothing to read yet
    expect(reader.indexer.status()).toMatchObject({ leader: false, indexedBlock: null });

    await follower.indexer.syncNow();
    const indexed = follower.indexer.status().indexedBlock;
    await reader.indexer.syncNow();
    expect(reader.indexer.status()).toMatchObject({ leader: false, indexedBlock: indexed });
    const workers = await get<Workers>(reader, '/workers');
    expect(workers.data.find((w) => w.address === roles.workerA.address)?.stake.wei).toBeDefined();
    // It read the head and nothing else of the chain: no logs, no registry, no cursor of its own.
    expect(new Set(rec.calls.map((c) => c.method))).toEqual(new Set(['eth_getBlockByNumber']));
    expect(await db.query(`SELECT id FROM network_cursor`)).toHaveLength(1);
    await reader.stop();
  });

  test('rewinds a reorg (anvil_snapshot / anvil_revert) and indexes the new branch', async () => {
    const { network, db } = await open('memory://', 50);
    const workerB = client(roles.workerB.privateKey);
    await network.indexer.syncNow();

    const snapshot = await rpc<Hex>(grid.rpcUrl, 'anvil_snapshot');
    await approveToken(workerB, {
      token: grid.chain.deployment.token,
      spender: grid.grid,
      amount: parseAipg('500'),
    });
    await increaseBond(workerB, { grid: grid.grid, role: 'worker', amount: parseAipg('500') });
    await network.indexer.syncNow();
    let b = (await get<Workers>(network, '/workers')).data.find((w) => w.address === roles.workerB.address)!;
    expect(b.stake.wei).toBe(parseAipg('4500').toString());
    const orphan = network.indexer.status().indexedBlock!;

    // The branch is replaced by a longer one: the same heights, other blocks.
    await rpc(grid.rpcUrl, 'anvil_revert', [snapshot]);
    await rpc(grid.rpcUrl, 'anvil_mine', ['0x3']);
    await approveToken(workerB, {
      token: grid.chain.deployment.token,
      spender: grid.grid,
      amount: parseAipg('100'),
    });
    await increaseBond(workerB, { grid: grid.grid, role: 'worker', amount: parseAipg('100') });
    expect(Number(await rpc<Hex>(grid.rpcUrl, 'eth_blockNumber'))).toBeGreaterThan(orphan);

    await network.indexer.syncNow();
    expect(network.indexer.status().reorgs).toBe(1);
    b = (await get<Workers>(network, '/workers')).data.find((w) => w.address === roles.workerB.address)!;
    expect(b.stake.wei).toBe(parseAipg('4100').toString());
    const bonded = await db.query<{ amount: string }>(
      `SELECT amount::text AS amount FROM network_events WHERE name = 'Bonded' AND account = $1 ORDER BY block_number`,
      [roles.workerB.address.toLowerCase()],
    );
    expect(bonded.map((r) => r.amount)).toEqual([parseAipg('4000').toString(), parseAipg('100').toString()]);
    const status = await get<{ indexer: { reorgs: number; last_reorg_block: number } }>(network, '/status');
    expect(status.indexer.reorgs).toBe(1);
    expect(status.indexer.last_reorg_block).toBeLessThanOrEqual(orphan);
  });

  test('a slash (BondSlashed) lands in the worker list, the activity feed and the operator page', async () => {
    const { network } = await open('memory://', 100);
    const { slash } = await installSlashHarness(grid);
    await slash(roles.workerB.address, parseAipg('250'));
    await network.indexer.syncNow();

    const b = (await get<Workers>(network, '/workers')).data.find(
      (w) => w.address === roles.workerB.address,
    )!;
    expect(b.slashes.count).toBe(1);
    expect(b.slashes.amount.wei).toBe(parseAipg('250').toString());
    expect(b.stake.wei).toBe(parseAipg('3850').toString());

    const activity = await get<{ data: { type: string; account: string; amount: { aipg: string } }[] }>(
      network,
      '/activity?kind=slash',
    );
    expect(activity.data[0]).toMatchObject({
      type: 'bond_slashed',
      account: roles.workerB.address,
      amount: { aipg: '250' },
    });

    const op = await get<{
      worker: { slashes: { count: number }; stake: { display: string } };
      activity: { type: string }[];
    }>(network, `/operators/${roles.workerB.address.toLowerCase()}`);
    expect(op.worker.slashes.count).toBe(1);
    expect(op.worker.stake.display).toBe('3,850');
    expect(op.activity.map((i) => i.type)).toContain('bond_slashed');
  });

  test('the live stream pushes new chain activity without polling the chain per client', async () => {
    const { network } = await open('memory://', 100);
    await network.indexer.syncNow();
    const res = await network.router.request('/events/stream');
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const payer = client(roles.payer.privateKey);
    // The first `status` event follows the feed's first poll, which fixes where the stream starts: deposit after it.
    let polled!: () => void;
    const started = new Promise<void>((r) => {
      polled = r;
    });
    const reading = readEvents(
      res,
      (e) => e.event === 'activity' && (e.data as { type: string }).type === 'deposited',
      10_000,
      (e) => e.event === 'status' && polled(),
    );
    await started;
    await approveToken(payer, {
      token: grid.chain.deployment.token,
      spender: grid.grid,
      amount: parseAipg('3'),
    });
    await deposit(payer, { grid: grid.grid, amount: parseAipg('3') });
    await network.indexer.syncNow();
    const events = await reading;
    expect(events[0]?.event).toBe('hello');
    const item = events.at(-1)!.data as { type: string; account: string; amount: { display: string } };
    expect(item).toMatchObject({ type: 'deposited', account: roles.payer.address, amount: { display: '3' } });
  });

  test('inputs are validated; addresses come back checksummed', async () => {
    const { network } = await open();
    await network.indexer.syncNow();
    for (const [path, param] of [
      ['/operators/0x1234', 'address'],
      ['/activity?limit=0', 'limit'],
      ['/activity?kind=bogus', 'kind'],
      ['/stats/timeseries?window=2h', 'window'],
      ['/stats/timeseries?window=7d&bucket=10', 'bucket'],
    ] as const) {
      const res = await network.router.request(path);
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { error: { param: string; type: string } };
      expect(body.error.param, path).toBe(param);
      expect(body.error.type).toBe('invalid_request_error');
    }
    const op = await get<{ address: string; worker: unknown; commands: { command: string }[] }>(
      network,
      `/operators/${roles.poorPayer.address.toLowerCase()}`,
    );
    expect(op.address).toBe(roles.poorPayer.address);
    expect(op.worker).toBeNull();
    expect(op.commands.map((c) => c.command)).toContain('aipg stake worker 1000');
  });
});

test('indexing starts at the deployment block found on chain when none is configured', async () => {
  const db = await openTestDb();
  const { publicClient } = createGridClients({ rpcUrl: grid.rpcUrl, chainId: grid.chain.anvil.chainId });
  const network = createNetwork({
    db,
    publicClient,
    deployment: { grid: grid.grid, chainId: grid.chain.anvil.chainId },
  });
  opened.push({ network, db });
  await network.migrate();
  await network.indexer.syncNow();
  expect(network.indexer.status().fromBlock).toBe(grid.chain.deployment.deployBlock);
});
