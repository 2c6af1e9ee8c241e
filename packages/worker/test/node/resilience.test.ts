import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type Worker } from '../../src/index.ts';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { createFakeBackend, type FakeBackend } from './helpers/fake-backend.ts';
import { type GatewayPeer, startGatewayPeer } from './helpers/gateway-peer.ts';
import { memoryLogger, waitFor, workerOptions } from './helpers/worker.ts';

let chain: TestChain;
let backend: FakeBackend;
const OPERATOR = 1;

beforeAll(async () => {
  chain = await setupChain();
  await chain.bondWorker(OPERATOR, '1000');
  backend = createFakeBackend({ name: 'resilient', tokenDelayMs: 10 });
  await chain.registerModel(backend.model);
});
afterAll(async () => {
  await chain?.stop();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function start(gatewayUrl: string, b: FakeBackend = backend, tweak: { drainTimeoutMs?: number } = {}) {
  const options = await workerOptions({ chain, operatorKey: chain.account(OPERATOR).privateKey, gatewayUrl });
  const { logger, lines } = memoryLogger();
  const worker = await startWorker(
    { ...options, ...tweak },
    { backends: [{ backend: b, maxConcurrency: 2 }], logger },
  );
  return { worker, lines };
}

describe('connection resilience', () => {
  let worker: Worker | undefined;
  let peer: GatewayPeer | undefined;
  afterAll(async () => {
    await worker?.stop({ force: true });
    await peer?.close();
  });

  it('starts before the gateway is up, retries with growing delays, and logs in once it is', async () => {
    const port = await freePort();
    const started = await start(`ws://127.0.0.1:${port}`);
    worker = started.worker;
    await waitFor(
      () => started.lines.filter((l) => l.includes('reconnecting')).length >= 3,
      10_000,
      'three failed attempts',
    );
    expect(worker.status().state).toBe('reconnecting');
    const delays = started.lines
      .filter((l) => l.includes('reconnecting'))
      .map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs);
    // 50 ms initial, doubling, capped at 400 ms, each between half and all of its step.
    delays.forEach((d, i) => {
      const step = Math.min(400, 50 * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(step / 2);
      expect(d).toBeLessThanOrEqual(step);
    });
    peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, port });
    await worker.ready();
    expect(worker.status().state).toBe('connected');
    await worker.stop();
    await peer.close();
    worker = undefined;
    peer = undefined;
  });

  it('backs off from a gateway that welcomes the worker and kicks it at once', async () => {
    peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid });
    const kicker = peer;
    let kicks = 0;
    const kickLoop = (async () => {
      while (kicks < 4) {
        const conn = await kicker.nextWorker();
        kicks += 1;
        conn.refuse('replaced', 'a newer connection of this operator logged in');
      }
    })();
    const started = await start(peer.url);
    worker = started.worker;
    await kickLoop;
    const delays = started.lines
      .filter((l) => l.includes('reconnecting'))
      .map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs);
    expect(delays.length).toBeGreaterThanOrEqual(3);
    delays.slice(0, 4).forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(Math.min(400, 50 * 2 ** i) / 2);
    });
    expect(
      started.lines.some((l) =>
        l.includes('gateway error: a newer connection of this operator logged in (replaced)'),
      ),
    ).toBe(true);
    await worker.stop();
    await peer.close();
    worker = undefined;
    peer = undefined;
  });

  it('drops a gateway that goes silent for three heartbeats, and reconnects', async () => {
    peer = await startGatewayPeer({
      chainId: chain.chainId,
      grid: chain.grid,
      heartbeatMs: 100,
      sendPings: false,
    });
    const first = peer.nextWorker();
    worker = (await start(peer.url)).worker;
    const conn = await first;
    const second = peer.nextWorker();
    const t0 = Date.now();
    expect((await conn.closed).code).toBe(1006); // terminated, no closing handshake
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await second;
    await worker.stop();
    await peer.close();
    worker = undefined;
    peer = undefined;
  });

  it('stays connected while the gateway pings every heartbeat', async () => {
    peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, heartbeatMs: 100 });
    const first = peer.nextWorker();
    worker = (await start(peer.url)).worker;
    const conn = await first;
    await new Promise((r) => setTimeout(r, 700));
    expect(peer.connections).toHaveLength(1);
    expect(conn.frames.filter((f) => f.type === 'pong').length).toBeGreaterThanOrEqual(4);
    await worker.stop();
    await peer.close();
    worker = undefined;
    peer = undefined;
  });
});

describe('a gateway that reports the bond gone', () => {
  it('makes the worker re-check the chain and stop when the bond is really unbonding', async () => {
    await chain.bondWorker(2, '1000');
    const peer = await startGatewayPeer({
      chainId: chain.chainId,
      grid: chain.grid,
      client: chain.publicClient,
    });
    try {
      const options = await workerOptions({
        chain,
        operatorKey: chain.account(2).privateKey,
        gatewayUrl: peer.url,
      });
      const login = peer.nextWorker();
      const worker = await startWorker(options, {
        backends: [{ backend: createFakeBackend({ name: 'resilient' }), maxConcurrency: 1 }],
        logger: memoryLogger().logger,
      });
      const conn = await login;
      await chain.unbondWorker(2, '1000');
      conn.refuse('bond_inactive', 'your worker bond is no longer active');
      const { error } = await worker.stopped;
      expect(error).toMatchObject({ code: 'WORKER_BOND_UNBONDING' });
      expect(worker.status().state).toBe('stopped');
    } finally {
      await peer.close();
    }
  });
});

describe('stopping with jobs in flight', () => {
  let peer: GatewayPeer;
  beforeAll(async () => {
    peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid });
  });
  afterAll(async () => {
    await peer.close();
  });

  it('delivers no result for a cancelled job even when the engine ignores the abort', async () => {
    const stubborn = createFakeBackend({ name: 'resilient', tokenDelayMs: 10, ignoreAbort: true });
    const login = peer.nextWorker();
    const { worker } = await start(peer.url, stubborn);
    const conn = await login;
    const handle = conn.sendJob({
      content: '[len:30]',
      params: { maxTokens: 30, temperature: 0, topP: 1, seed: null, stop: [] },
    });
    await waitFor(() => stubborn.running === 1, 5_000, 'job running');
    conn.cancel(handle.job.jobId);
    expect(await handle.done).toMatchObject({ type: 'job-error', code: 'WORKER_JOB_CANCELLED' });
    await waitFor(() => stubborn.running === 0, 5_000, 'engine to finish anyway');
    await new Promise((r) => setTimeout(r, 50));
    expect(conn.frames.filter((f) => f.type === 'result')).toEqual([]);
    await worker.stop();
  });

  it('aborts jobs still running when the drain timeout passes', async () => {
    const b = createFakeBackend({ name: 'resilient' });
    const login = peer.nextWorker();
    const { worker } = await start(peer.url, b, { drainTimeoutMs: 200 });
    const conn = await login;
    const handle = conn.sendJob({ content: '[hang]' });
    await waitFor(() => b.running === 1, 5_000, 'job running');
    const t0 = Date.now();
    await worker.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(await handle.done).toMatchObject({ type: 'job-error', code: 'WORKER_DRAINING', retryable: true });
    expect(b.running).toBe(0);
  });

  it('stop({ force: true }) aborts at once; a streamed job is then not retryable', async () => {
    const b = createFakeBackend({ name: 'resilient' });
    const login = peer.nextWorker();
    const { worker } = await start(peer.url, b);
    const conn = await login;
    const handle = conn.sendJob({
      content: '[delay:30] [len:500]',
      stream: true,
      params: { maxTokens: 500, temperature: 0, topP: 1, seed: null, stop: [] },
    });
    await waitFor(() => handle.tokens.length > 0, 5_000, 'a token');
    await worker.stop({ force: true });
    expect(await handle.done).toMatchObject({ type: 'job-error', code: 'WORKER_DRAINING', retryable: false });
    expect(worker.status().state).toBe('stopped');
  });
});
