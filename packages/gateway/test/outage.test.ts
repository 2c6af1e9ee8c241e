import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { approveToken, deposit, gridAbi, increaseGatewayCap } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import type { Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StartGatewayReturnType } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

// The chain's RPC going away must not take the API with it: requests are answered from cached chain
// state (bounded staleness), several RPC URLs fall back to one another, and settlement catches up once
// the RPC is back. The RPC is a real JSON-RPC proxy in front of anvil that can be switched off (each
// connection then reset at once, as a provider outage looks to a client).

type Rpc = { url: string; down: boolean; calls: number; server: Server };

async function rpcProxy(target: string): Promise<Rpc> {
  const rpc: Rpc = { url: '', down: false, calls: 0, server: undefined as unknown as Server };
  rpc.server = createServer((req, res) => {
    rpc.calls += 1;
    if (rpc.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat(chunks),
      })
        .then(async (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((r) => rpc.server.listen(0, '127.0.0.1', r));
  rpc.url = `http://127.0.0.1:${(rpc.server.address() as AddressInfo).port}`;
  return rpc;
}

let grid: TestGrid;
const proxies: Rpc[] = [];
const gateways: StartGatewayReturnType[] = [];
const workers: ScriptedWorker[] = [];

beforeAll(async () => {
  grid = await startTestGrid();
}, 120_000);

afterAll(async () => {
  for (const w of workers) await w.close();
  for (const g of gateways) {
    await g.stop();
    await dropTestSchema(g.common.options);
  }
  for (const p of proxies) {
    p.server.closeAllConnections();
    await new Promise((r) => p.server.close(r));
  }
  await grid?.stop();
});

async function gatewayOn(
  rpcUrl: string,
  overrides: Record<string, unknown> = {},
  payerKey: Hex = roles.payer.privateKey,
) {
  const gw = await startTestGateway(
    { ...grid, rpcUrl },
    {
      'chain.balanceCacheMs': 20,
      'chain.registryCacheMs': 20,
      'hub.bondRecheckMs': 100,
      ...overrides,
    },
  );
  gateways.push(gw);
  const worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  workers.push(worker);
  await worker.connect();
  const key = await createApiKey(gw, payerKey);
  const chat = () =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL.name,
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 4,
      }),
    });
  return { gw, worker, key, chat };
}

const batchCount = () =>
  grid.publicClient.readContract({
    address: grid.grid,
    abi: gridAbi,
    functionName: 'batchCount',
  }) as Promise<bigint>;

describe('the RPC down', () => {
  test('requests are answered from cached chain state; settlement waits and catches up when it is back', async () => {
    const rpc = await rpcProxy(grid.rpcUrl);
    proxies.push(rpc);
    const { gw, worker, chat } = await gatewayOn(rpc.url);
    expect((await chat()).status).toBe(200);
    rpc.down = true;
    const callsBefore = rpc.calls;
    // well past every cache time (20 ms), within the staleness bound (120 s by default)
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await chat();
      statuses.push(r.status);
    }
    expect(statuses).toEqual(Array(8).fill(200));
    // the RPC was tried (background refreshes), and failed, and nobody waited on it
    expect(rpc.calls).toBeGreaterThan(callsBefore);
    // the worker stays connected through bond re-checks that fail
    expect(worker.closeInfo).toBeUndefined();
    const batches = await batchCount();
    // settlement cannot send: it keeps the receipts for later
    await gw.settleNow().catch(() => {});
    expect(await batchCount()).toBe(batches);
    rpc.down = false;
    await gw.settleNow();
    expect(await batchCount()).toBe(batches + 1n);
  }, 120_000);

  test('past the staleness bound the chain read error stands: 503 chain_unavailable, nothing dispatched', async () => {
    const rpc = await rpcProxy(grid.rpcUrl);
    proxies.push(rpc);
    const { worker, chat } = await gatewayOn(rpc.url, { 'chain.maxStaleMs': 0 });
    expect((await chat()).status).toBe(200);
    rpc.down = true;
    const jobs = worker.jobs.length;
    const res = await chat();
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('chain_unavailable');
    expect(worker.jobs.length).toBe(jobs);
    rpc.down = false;
    expect((await chat()).status).toBe(200);
  }, 120_000);

  test('several RPC URLs: the first one down, the gateway starts, serves and settles through the next', async () => {
    const first = await rpcProxy(grid.rpcUrl);
    const second = await rpcProxy(grid.rpcUrl);
    proxies.push(first, second);
    first.down = true;
    const { gw, chat } = await gatewayOn(`${first.url},${second.url}`);
    expect((await chat()).status).toBe(200);
    const batches = await batchCount();
    await gw.settleNow();
    expect(await batchCount()).toBe(batches + 1n);
    expect(first.calls).toBeGreaterThan(0);
    expect(second.calls).toBeGreaterThan(0);
  }, 120_000);
});

describe('cached funds', () => {
  test('a payer refused for funds who deposits is served at once, not after the cache time', async () => {
    // Funds cached for a minute: the refusal re-reads the chain before it stands.
    const { gw, chat } = await gatewayOn(
      grid.rpcUrl,
      { 'chain.balanceCacheMs': 60_000 },
      roles.poorPayer.privateKey,
    );
    const refused = await chat();
    expect(refused.status).toBe(402);
    const payer = grid.client(roles.poorPayer.privateKey);
    await approveToken(payer, {
      token: grid.chain.deployment.token,
      spender: grid.grid,
      amount: parseAipg('5'),
    });
    await deposit(payer, { grid: grid.grid, amount: parseAipg('5') });
    await increaseGatewayCap(payer, { grid: grid.grid, gateway: gw.gateway, amount: parseAipg('5') });
    expect((await chat()).status).toBe(200);
  }, 120_000);
});
