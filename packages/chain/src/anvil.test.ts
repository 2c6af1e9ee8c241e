import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPublicClient, http } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { describe, expect, test } from 'vitest';
import { anvilTestAccounts, startAnvil } from './anvil.ts';

/** Running (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(pid: number, timeoutMs = 5_000): Promise<boolean> {
  for (const start = Date.now(); Date.now() - start < timeoutMs; ) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

const holder = fileURLToPath(new URL('../test/fixtures/hold-anvil.ts', import.meta.url));

describe('startAnvil', () => {
  test('listens on an OS-chosen port, serves the chain id, and stops without leaving a process', async () => {
    const anvil = await startAnvil({ chainId: 1337 });
    try {
      expect(anvil.port).toBeGreaterThan(0);
      expect(anvil.rpcUrl).toBe(`http://127.0.0.1:${anvil.port}`);
      const client = createPublicClient({ transport: http(anvil.rpcUrl) });
      expect(await client.getChainId()).toBe(1337);
      expect(await client.getBalance({ address: anvilTestAccounts[9].address })).toBe(10_000n * 10n ** 18n);
      expect(alive(anvil.pid)).toBe(true);
    } finally {
      await anvil.stop();
    }
    expect(alive(anvil.pid)).toBe(false);
    await anvil.stop(); // idempotent
  });

  test('two anvils run side by side', async () => {
    const [a, b] = await Promise.all([startAnvil(), startAnvil()]);
    expect(a.port).not.toBe(b.port);
    await Promise.all([a.stop(), b.stop()]);
  });

  test.each(['SIGKILL', 'SIGTERM'] as const)('no anvil outlives a parent killed by %s', async (signal) => {
    const parent = spawn(process.execPath, ['--import', 'tsx', holder], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      parent.on('exit', () => reject(new Error('the fixture exited early')));
    });
    expect(alive(pid)).toBe(true);
    parent.kill(signal);
    expect(await gone(pid)).toBe(true);
  });

  test('a bad flag is a clear ANVIL_START error', async () => {
    await expect(startAnvil({ args: ['--no-such-flag'] })).rejects.toMatchObject({
      code: 'ANVIL_START',
      shortMessage: expect.stringMatching(/^anvil exited before listening/),
    });
  });
});

describe('anvilTestAccounts', () => {
  test('every public test key matches its address', () => {
    expect(anvilTestAccounts).toHaveLength(10);
    for (const { address, privateKey } of anvilTestAccounts)
      expect(privateKeyToAddress(privateKey)).toBe(address);
  });
});
