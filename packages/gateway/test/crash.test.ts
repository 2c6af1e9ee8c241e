import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createApiKey,
  ensureTestTokenizerFile,
  MODEL,
  roles,
  startTestGrid,
  type TestGrid,
  TOKENIZERS_DIR,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

// A gateway process killed (SIGKILL) while an idempotent request runs: the client's retry with the same
// Idempotency-Key, on the restarted gateway, runs at once (the dead process's lock and its job are taken
// over, nothing charged for the lost run), instead of waiting out a lease and getting 409. A real child
// process on a real database (embedded PGlite on disk, or a schema on DATABASE_URL), killed for real.

const BIN = resolve(import.meta.dirname, '../src/bin/gateway.ts');
let grid: TestGrid;
let dir: string;
let port: number;
const schema = `gw_crash_${randomBytes(5).toString('hex')}`;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function startGatewayProcess(...set: string[]): Promise<ChildProcess> {
  const flags = ['settlement.intervalMs=3600000', ...set].flatMap((x) => ['--set', x]);
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...flags], {
    env: {
      ...process.env,
      AIPG_RPC_URL: grid.rpcUrl,
      AIPG_GRID_ADDRESS: grid.grid,
      AIPG_GATEWAY_PRIVATE_KEY: roles.gateway.privateKey,
      AIPG_GATEWAY_PORT: String(port),
      AIPG_GATEWAY_DB_DIR: dir,
      AIPG_GATEWAY_TOKENIZERS_DIR: TOKENIZERS_DIR,
      ...(process.env.DATABASE_URL ? { AIPG_GATEWAY_DB_SCHEMA: schema } : {}),
      AIPG_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}): ${err}`);
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return child;
    if (Date.now() > deadline) throw new Error(`the gateway did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  grid = await startTestGrid();
  await ensureTestTokenizerFile();
  dir = await mkdtemp(join(tmpdir(), 'aipg-crash-'));
  port = await freePort();
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (process.env.DATABASE_URL) {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  }
  await grid?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a gateway killed mid-request', () => {
  test('the retry with the same Idempotency-Key runs at once on the restarted gateway; the lost run charged nothing', async () => {
    const url = `http://127.0.0.1:${port}`;
    const gw = { url, gateway: roles.gateway.address, chainId: 31337 };
    const first = await startGatewayProcess();
    const key = await createApiKey(gw, roles.payer.privateKey);
    const worker = (delayMs: number) =>
      new ScriptedWorker({
        url: `ws://127.0.0.1:${port}/v1/workers/connect`,
        operatorKey: roles.operatorA.privateKey,
        owner: roles.workerA.address,
        models: [MODEL],
        script: () => ({ tokenDelayMs: delayMs }),
      });
    const slow = worker(2_000);
    await slow.connect();
    const request = () =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'idempotency-key': 'crash-1',
        },
        body: JSON.stringify({
          model: MODEL.name,
          messages: [{ role: 'user', content: 'hello' }],
          max_tokens: 8,
        }),
      });
    const lost = request().then(
      (r) => r.status,
      () => 'connection lost',
    );
    await expect.poll(() => slow.jobs.length, { timeout: 10_000 }).toBe(1);
    const lostJob = slow.jobs[0]!.jobId;
    const balance = async () => {
      const b = (await (
        await fetch(`${url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        unsettled: { wei: string };
        reserved: { wei: string };
      };
      return { unsettled: BigInt(b.unsettled.wei), reserved: BigInt(b.reserved.wei) };
    };
    expect((await balance()).reserved).toBeGreaterThan(0n);

    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await lost).toBe('connection lost');
    await slow.close();

    await startGatewayProcess();
    const fast = worker(0);
    await fast.connect();
    const started = Date.now();
    const retry = await request();
    expect(retry.status).toBe(200);
    const body = (await retry.json()) as { grid: { job_id: string } };
    // a new run, not the lost one, and not a 409 after the lock ran out
    expect(body.grid.job_id).not.toBe(lostJob);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    const waitedMs = Date.now() - started;
    const job = (await (
      await fetch(`${url}/v1/jobs/${lostJob}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as {
      status: string;
      error?: { code: string };
    };
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('gateway_restarted');
    // exactly one charge: the rerun's; nothing held for the lost one
    const b = await balance();
    expect(b.reserved).toBe(0n);
    expect(b.unsettled).toBeGreaterThan(0n);
    // and the key now replays that one answer
    const again = await request();
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { grid: { job_id: string } }).grid.job_id).toBe(body.grid.job_id);
    expect((await balance()).unsettled).toBe(b.unsettled);
    console.log(`crash: the retry after SIGKILL and restart was answered in ${waitedMs} ms`);
    await fast.close();
  }, 180_000);

  test('killed as it answered (the commit journaled, its statement allowed to wait): the restarted gateway has the job done and charged once', async () => {
    const url = `http://127.0.0.1:${port}`;
    const gw = { url, gateway: roles.gateway.address, chainId: 31337 };
    // Embedded PGlite journals the commit and answers; here its statement may wait 10 minutes, so the
    // kill usually lands before it runs (a background statement of the gateway may take it along first:
    // then the database already has it). Either way the answer the client got is the job the books hold.
    const first = await startGatewayProcess('database.commitDelayMs=600000');
    const key = await createApiKey(gw, roles.payer.privateKey);
    const w = new ScriptedWorker({
      url: `ws://127.0.0.1:${port}/v1/workers/connect`,
      operatorKey: roles.operatorA.privateKey,
      owner: roles.workerA.address,
      models: [MODEL],
      script: () => ({}),
    });
    await w.connect();
    const headers = { authorization: `Bearer ${key}` };
    const spend = async () => {
      const b = (await (await fetch(`${url}/v1/balance`, { headers })).json()) as {
        unsettled: { wei: string };
        reserved: { wei: string };
      };
      return { unsettled: BigInt(b.unsettled.wei), reserved: BigInt(b.reserved.wei) };
    };
    const before = await spend();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL.name,
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 4,
      }),
    });
    const body = (await res.json()) as {
      choices: { message: { content: string } }[];
      grid: { job_id: string; fee_wei: string; receipt_signature: string };
    };
    first.kill('SIGKILL');
    expect(res.status).toBe(200);
    await new Promise((r) => first.once('exit', r));
    await w.close();
    const journal = `${dir}-journal`;
    const left = existsSync(journal)
      ? readdirSync(journal).filter((n) => statSync(join(journal, n)).size > 0).length
      : 0;

    await startGatewayProcess();
    const job = (await (await fetch(`${url}/v1/jobs/${body.grid.job_id}`, { headers })).json()) as {
      status: string;
      result?: {
        choices: { message: { content: string } }[];
        grid: { fee_wei: string; receipt_signature: string | null };
      };
    };
    expect(job.status).toBe('succeeded');
    // the answer the client got is what the books hold: its text, its fee, its receipt
    expect(job.result?.choices[0]?.message.content).toBe(body.choices[0]!.message.content);
    expect(job.result?.grid.receipt_signature).toBe(body.grid.receipt_signature);
    expect(job.result?.grid.fee_wei).toBe(body.grid.fee_wei);
    // charged exactly that fee, once; nothing left reserved
    const after = await spend();
    expect(BigInt(body.grid.fee_wei)).toBeGreaterThan(0n);
    expect(after.unsettled - before.unsettled).toBe(BigInt(body.grid.fee_wei));
    expect(after.reserved).toBe(before.reserved);
    console.log(`crash: killed as it answered; journal files with lines left behind: ${left}`);
  }, 180_000);
});
