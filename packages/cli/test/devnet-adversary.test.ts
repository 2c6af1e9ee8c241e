import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createGridClients, getBond } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import type { Address } from 'viem';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevnet } from '../src/devnet/start-devnet.ts';

const BIN = resolve(import.meta.dirname, '../bin/aipg.js');

// `aipg devnet --adversary substitute`: with no manual step, the dishonest worker is audited, failed
// by the validators and slashed on chain, and the devnet says so.
describe('aipg devnet --adversary substitute', () => {
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
        'substitute',
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
    expect(out).toMatch(/✓ Starting the adversary worker \(substitute/);
    expect(out).toContain('Watch for "✗ slashed');

    const info = JSON.parse(await readFile(join(dir, 'devnet.json'), 'utf8')) as {
      rpcUrl: string;
      chainId: number;
      contracts: { grid: Address };
      validators: Address[];
      adversary: { address: Address; kind: string };
    };
    expect(info.validators).toHaveLength(3);
    expect(info.adversary.kind).toBe('substitute');

    const slashed = new RegExp(
      `✗ slashed ${info.adversary.address} \\(substitute\\): bond 1,000 → 900 AIPG; finders paid (0x[0-9a-fA-F]{4}…[0-9a-fA-F]{4}(, )?)+ [\\d.]+ AIPG each`,
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

// A lie the gateway refuses itself never reaches the chain: the devnet says so instead of waiting
// for a slash that cannot come.
describe('a devnet with a truncate adversary', () => {
  it('prints that the gateway refused its receipts: nothing charged, nothing to slash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-refused-'));
    let out = '';
    const io = { stdout: { write: (c: string) => (out += c) }, stderr: { write: (c: string) => (out += c) } };
    const net = await startDevnet({
      dir,
      port: 0,
      rpcPort: 0,
      model: 'tiny',
      validators: 0,
      adversary: 'truncate',
      traffic: 500,
      io,
    });
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes('✗ refused by the gateway')) {
        if (Date.now() > deadline) throw new Error(`no refusal in:\n${out}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(out).toMatch(
        /✗ refused by the gateway: truncate — 3 receipts rejected \(finish "?stop"?[^\n]*(end token|no output token)[^\n]*\); nothing charged, nothing to slash\n/,
      );
      expect(out.match(/✗ refused by the gateway/g)).toHaveLength(1);
      expect(net.adversaryWorker!.events.length).toBeGreaterThanOrEqual(3);
      const { publicClient } = createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId });
      const bond = await getBond(publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: net.adversaryWorker!.address,
      });
      expect(bond.amount).toBe(parseAipg('1000'));
      expect(bond.slashed).toBe(0n);
    } finally {
      await net.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

// An image cheat on the devnet: its traffic sends image jobs, every other one to the adversary; with no
// manual step the validators re-run drawn steps, FAIL it, and the slash lands on chain and is printed.
describe('a devnet with an image-fewer-steps adversary', () => {
  it('prints the slash of the image adversary’s bond, with no manual step', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-image-adversary-'));
    let out = '';
    const io = { stdout: { write: (c: string) => (out += c) }, stderr: { write: (c: string) => (out += c) } };
    const net = await startDevnet({
      dir,
      port: 0,
      rpcPort: 0,
      model: 'tiny',
      adversary: 'image-fewer-steps',
      traffic: 1_000,
      settleIntervalMs: 2_000,
      io,
    });
    try {
      const address = net.adversaryWorker!.address;
      const slashed = new RegExp(`✗ slashed ${address} \\(image-fewer-steps\\): bond 1,000 → 900 AIPG`);
      const deadline = Date.now() + 240_000;
      while (!slashed.test(out)) {
        if (Date.now() > deadline) throw new Error(`no slash in:\n${out}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const { publicClient } = createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId });
      const bond = await getBond(publicClient, { grid: net.contracts.grid, role: 'worker', owner: address });
      expect(bond.slashed).toBeGreaterThan(0n);
      // the honest worker serves the same image traffic and keeps its bond
      const honest = await getBond(publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: net.accounts.worker,
      });
      expect(honest.slashed).toBe(0n);
    } finally {
      await net.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
