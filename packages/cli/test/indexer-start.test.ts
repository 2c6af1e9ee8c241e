import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { approveToken, increaseBond } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import type { NetworkStatus, NetworkWorkers } from '@aipg/indexer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roles, startTestGrid, type TestGrid } from '../../gateway/test/helpers/grid.ts';
import { main } from '../src/main.ts';

const BIN = resolve(import.meta.dirname, '../bin/aipg.js');

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    streams: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
    },
  };
}

/** Polls `check` until it returns a value (not undefined), or fails with `what` at the deadline. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('aipg indexer start (flags)', () => {
  it('is listed and has help that says where the database must be', async () => {
    const { out, streams } = io();
    expect(await main(['indexer', 'start', '--help'], { env: {}, ...streams })).toBe(0);
    expect(out.stdout).toContain('aipg indexer start');
    expect(out.stdout).toContain('--database-url');
    expect(out.stdout).toMatch(/PGlite[\s\S]*no gateway holds/);
    expect(out.stdout).toContain('network.indexer=false');
  });

  it('refuses a bad port or database URL before connecting, with one line and exit 1', async () => {
    for (const [args, message] of [
      [['--port', 'eighty'], /^error: invalid --port "eighty"/],
      [['--port', '70000'], /^error: invalid --port "70000"/],
      [['--database-url', 'mysql://x'], /^error: invalid database URL/],
      [['--log-level', 'loud'], /^error: invalid --log-level "loud"/],
    ] as const) {
      const { out, streams } = io();
      expect(await main(['indexer', 'start', ...args], { env: {}, ...streams })).toBe(1);
      expect(out.stderr).toMatch(message);
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('aipg indexer start (its own process)', () => {
  let grid: TestGrid;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    grid = await startTestGrid();
    dir = await mkdtemp(join(tmpdir(), 'aipg-indexer-'));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await grid?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('follows the chain into the database, serves what it indexed on its own port, and drains on SIGTERM', async () => {
    const proc = spawn(
      process.execPath,
      [
        BIN,
        'indexer',
        'start',
        '--rpc-url',
        grid.rpcUrl,
        '--grid',
        grid.grid,
        '--deploy-block',
        String(grid.chain.deployment.deployBlock),
        '--database-dir',
        join(dir, 'db'),
        '--port',
        '0',
        '--poll-interval',
        '50',
        '--log-level',
        'warn',
      ],
      // PGlite in `dir` even where the suite runs on a PostgreSQL server.
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '' } },
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
    const base = await until(
      'the indexer to listen',
      async () => {
        if (proc.exitCode !== null) throw new Error(`aipg indexer start exited:\n${out}`);
        return out.includes('Press Ctrl-C to stop.')
          ? out.match(/(http:\/\/127\.0\.0\.1:\d+)\/v1\/network\/status/)?.[1]
          : undefined;
      },
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${out}`);
    });
    const get = async <T>(path: string) => {
      const res = await fetch(`${base}/v1/network${path}`);
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      return (await res.json()) as T;
    };
    const stakeOf = async (owner: string) =>
      (await get<NetworkWorkers>('/workers')).data.find((w) => w.address === owner)?.stake.wei;

    // It caught up with the devnet's own history: the bonds made before it started.
    expect(await until('the initial bonds', () => stakeOf(roles.workerA.address))).toBe(
      parseAipg('1000').toString(),
    );
    const status = await get<NetworkStatus>('/status');
    expect(status.indexer).toMatchObject({ leader: true, from_block: grid.chain.deployment.deployBlock });

    // A bond raised now shows up in its answers.
    const worker = grid.client(roles.workerA.privateKey);
    await approveToken(worker, {
      token: grid.chain.deployment.token,
      spender: grid.grid,
      amount: parseAipg('500'),
    });
    await increaseBond(worker, { grid: grid.grid, role: 'worker', amount: parseAipg('500') });
    await until('the raised bond', async () =>
      (await stakeOf(roles.workerA.address)) === parseAipg('1500').toString() ? true : undefined,
    );
    // The dashboard is served beside the API (a build or the page that says how to make one).
    expect((await fetch(`${base}/`)).status).toBeLessThan(500);

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('indexer stopped');
    await expect(fetch(`${base}/v1/network/status`)).rejects.toThrow();
  }, 120_000);
});
