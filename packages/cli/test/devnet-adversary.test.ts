import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createGridClients, getBond } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import type { Address } from 'viem';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../bin/aipg.js');

// `aipg devnet --adversary truncate`: with no manual step, the dishonest worker is audited, failed
// by the validators and slashed on chain, and the devnet says so.
describe('aipg devnet --adversary truncate', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints the slash of the adversary’s bond and the finders paid, as it lands on chain', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-adversary-'));
    const proc = spawn(
      process.execPath,
      [
        BIN,
        'devnet',
        '--port',
        '0',
        '--rpc-port',
        '0',
        '--dir',
        dir,
        '--model',
        'tiny',
        '--adversary',
        'truncate',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const waitFor = async (text: string | RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (typeof text === 'string' ? !out.includes(text) : !text.test(out)) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`no ${text} in:\n${out}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    await waitFor('Press Ctrl-C to stop.', 90_000);
    const up = Date.now();
    expect(out).toMatch(/✓ Bonding 3 validators \(10,000 AIPG each\)/);
    expect(out).toMatch(/✓ Starting 3 validator nodes/);
    expect(out).toMatch(/✓ Starting the adversary worker \(truncate/);

    const info = JSON.parse(await readFile(join(dir, 'devnet.json'), 'utf8')) as {
      rpcUrl: string;
      chainId: number;
      contracts: { grid: Address };
      validators: Address[];
      adversary: { address: Address; kind: string };
    };
    expect(info.validators).toHaveLength(3);
    expect(info.adversary.kind).toBe('truncate');

    const slashed = new RegExp(
      `✗ slashed ${info.adversary.address} \\(truncate\\): bond 1,000 → 900 AIPG; finders paid (0x[0-9a-fA-F]{4}…[0-9a-fA-F]{4}(, )?)+ [\\d.]+ AIPG each`,
    );
    await waitFor(slashed, 180_000);
    console.log(`first slash ${((Date.now() - up) / 1000).toFixed(0)} s after the devnet was up`);
    expect(out).toContain(`⚑ FAIL attested by`);

    // the chain agrees: the bond is down by the slash
    const { publicClient } = createGridClients({ rpcUrl: info.rpcUrl, chainId: info.chainId });
    const bond = await getBond(publicClient, {
      grid: info.contracts.grid,
      role: 'worker',
      owner: info.adversary.address,
    });
    expect(bond.amount).toBeLessThanOrEqual(parseAipg('900'));
    expect(bond.slashed).toBe(parseAipg('1000') - bond.amount);

    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('devnet stopped');
  }, 300_000);
});
