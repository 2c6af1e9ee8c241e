import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { receiptFromJson, receiptTypedData } from '@aipg/core';
import { verifyTypedData } from 'viem';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { createFakeBackend } from './helpers/fake-backend.ts';
import { type GatewayPeer, startGatewayPeer } from './helpers/gateway-peer.ts';
import { waitFor } from './helpers/worker.ts';

const CHILD = fileURLToPath(new URL('./helpers/worker-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const MODEL = 'signal-model';
const OPERATOR = 4;

let chain: TestChain;
let peer: GatewayPeer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  chain = await setupChain();
  peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, client: chain.publicClient });
  await chain.bondWorker(OPERATOR, '1000');
  await chain.registerModel(createFakeBackend({ name: MODEL }).model);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  await peer?.close();
  await chain?.stop();
});

/** Starts `aipg worker start` (its command body) in a child process. */
function spawnWorker(operator: number) {
  const flags = {
    network: 'devnet',
    rpcUrl: chain.rpcUrl,
    grid: chain.grid,
    gateway: peer.url,
    model: MODEL,
    backend: 'ollama',
    weightsHash: `0x${'00'.repeat(32)}`,
    logLevel: 'warn',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(flags)], {
    cwd: REPO,
    env: { ...process.env, AIPG_OPERATOR_KEY: chain.account(operator).privateKey, FAKE_MODEL: MODEL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  child.stdout?.resume();
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited, stderr: () => stderr };
}

describe('aipg worker start in a real process', () => {
  it('drains on SIGTERM: the running job still delivers its receipt, new jobs are refused, then exit 0', async () => {
    const login = peer.nextWorker();
    const w = spawnWorker(OPERATOR);
    const conn = await login;
    const job = conn.sendJob({
      content: 'a long answer [delay:40] [len:25]',
      stream: true,
      params: { maxTokens: 64, temperature: 0, topP: 1, seed: null, stop: [] },
    });
    await waitFor(() => job.tokens.length >= 2, 10_000, 'first tokens');

    w.child.kill('SIGTERM');
    await waitFor(() => w.stderr().includes('taking no new jobs'), 5_000, 'the drain message');
    expect(w.stderr()).toContain(
      'SIGTERM: taking no new jobs, finishing 1 running job (SIGTERM again to exit now)',
    );
    const late = await conn.sendJob({ content: 'too late' }).done;
    expect(late).toMatchObject({ type: 'job-error', code: 'WORKER_DRAINING', retryable: true });

    const result = await job.done;
    if (result.type !== 'result') throw new Error(JSON.stringify(result));
    expect(result.outputTokenIds).toHaveLength(25);
    expect(result.finishReason).toBe('stop');
    expect(
      await verifyTypedData({
        address: chain.account(OPERATOR).address,
        ...receiptTypedData(receiptFromJson(result.receipt), chain.chainId, chain.grid),
        signature: result.signature,
      }),
    ).toBe(true);
    expect(await conn.closed).toEqual({ code: 1001, reason: 'worker shutting down' });
    expect(await w.exited).toEqual([0, null]);
  });

  it('exits at once on a second signal', async () => {
    const login = peer.nextWorker();
    const w = spawnWorker(OPERATOR);
    const conn = await login;
    // A job under way (its first tokens arrived) that would run for ~40 s: the drain waits for it.
    const job = conn.sendJob({
      content: 'a long answer [delay:40] [len:1000]',
      stream: true,
      params: { maxTokens: 1000, temperature: 0, topP: 1, seed: null, stop: [] },
    });
    await waitFor(() => job.tokens.length >= 1, 10_000, 'first tokens');
    w.child.kill('SIGINT');
    await waitFor(() => w.stderr().includes('taking no new jobs'), 5_000, 'the drain message');
    const t0 = Date.now();
    w.child.kill('SIGINT');
    expect(await w.exited).toEqual([130, null]);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(w.stderr()).toContain('second SIGINT, exiting now');
    void job;
  });

  it('refuses to start without a bond: one line on stderr, exit 1', async () => {
    const w = spawnWorker(9);
    expect(await w.exited).toEqual([1, null]);
    expect(w.stderr().trim()).toBe(
      `aipg worker: no worker bond for operator ${chain.account(9).address}: bond at least 1,000 AIPG with \`aipg stake worker 1000\` (or, from the owner's wallet, \`aipg stake worker 1000 --operator ${chain.account(9).address}\`)`,
    );
  });
});
