import { Writable } from 'node:stream';
import { createDaemonLogger } from '@aipg/daemon';
import type { Hex } from 'viem';
import { createWorkerOptions, type WorkerOptions } from '../../../src/index.ts';
import type { TestChain } from './chain.ts';

/** Worker options as `aipg worker start` builds them, pointed at a test chain and gateway peer. */
export async function workerOptions({
  chain,
  operatorKey,
  gatewayUrl,
  network = 'devnet',
  searchPath = '',
  metricsPort,
}: {
  chain: TestChain;
  operatorKey: Hex;
  gatewayUrl: string;
  network?: string;
  searchPath?: string;
  metricsPort?: number;
}): Promise<WorkerOptions> {
  const options = await createWorkerOptions(
    {
      network,
      rpcUrl: chain.rpcUrl,
      grid: chain.grid,
      gateway: gatewayUrl,
      // Backends are passed to startWorker directly; the flags still describe one to be valid.
      model: 'unused',
      backend: 'ollama',
      weightsHash: `0x${'00'.repeat(32)}`,
      metricsPort,
    },
    { AIPG_OPERATOR_KEY: operatorKey, PATH: searchPath },
  );
  return { ...options, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, drainTimeoutMs: 20_000 };
}

/** A debug-level logger whose JSON lines the test can read (to check what is, and is not, logged). */
export function memoryLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { logger: createDaemonLogger({ service: 'worker', level: 'debug', destination: stream }), lines };
}

export async function waitFor<T>(
  check: () => T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
