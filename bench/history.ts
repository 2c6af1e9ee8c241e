/**
 * 11. The gateway's database work per request as its history grows. A finished job leaves index
 * entries behind (its lease, its receipt number in flight, its receipt waiting for a batch) until the
 * table is vacuumed, and embedded PGlite never vacuums: a statement that finds its rows by walking those
 * entries costs more with every request ever served. This serves jobs through the gateway's own storage
 * (each reserved and committed by the batched statements a request uses, 16 at a time, as under load),
 * settling every 1,000 as settlement does, and prints after each step the CPU per job and the time of
 * the passes that run on a timer: settlement's count of what waits (every second), the recovery of
 * lapsed leases (every 10 s) and, for contrast, the recovery pass over every running job that ran
 * every 10 s until 2026-12-07 (it now runs once, at start). On PGlite, then on the PostgreSQL server of
 * `DATABASE_URL` when it is set (a fresh schema, dropped after).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from 'viem';
import {
  openTestStorage,
  serveTestJob,
  settleWaiting,
  testJob,
} from '../packages/gateway/test/helpers/storage.ts';

type Table = (title: string, rows: (string | number)[][]) => void;

const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const gateway = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
const KEY = 'kbenchhistory';
const IN_FLIGHT = 16;
const SETTLE_EVERY = 1_000;

async function timed(run: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await run();
  return performance.now() - t;
}

async function one(url: string | undefined, steps: number, step: number) {
  const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-history-'));
  // PGlite on disk in its own folder, as a gateway keeps it; or a fresh schema on the server.
  const { storage, close } = await openTestStorage(
    'bench_history',
    { dir: join(dir, 'db'), url },
    { keyId: KEY, payer },
  );
  try {
    await storage.receiptNumbers.init(gateway, 0n);
    const modelId = `0x${'be'.repeat(32)}` as const;
    const serveOne = async () => {
      const job = testJob(
        { keyId: KEY, payer, reservedFee: 100n, modelId },
        {
          request: {
            input: { messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] },
            model: 'bench',
            includeUsage: false,
            pin: null,
            maxPrice: null,
            created: 1,
          },
          promptTokenIds: Array.from({ length: 24 }, (_, i) => 1_000 + i),
        },
      );
      await serveTestJob(storage, job, { gateway, worker, fee: 40n });
    };
    const rows: (string | number)[][] = [];
    let first: number | undefined;
    let cpu = 0;
    for (let k = 1; k <= steps; k++) {
      const c0 = process.cpuUsage();
      for (let done = 0; done < step; done += SETTLE_EVERY) {
        for (let i = 0; i < SETTLE_EVERY; i += IN_FLIGHT)
          await Promise.all(Array.from({ length: IN_FLIGHT }, serveOne));
        await settleWaiting(storage.db, gateway);
      }
      const c = process.cpuUsage(c0);
      cpu = (c.user + c.system) / 1000 / step;
      first ??= cpu;
      const count = await timed(() => storage.receipts.countWaiting(gateway));
      const recovery = await timed(() => storage.jobs.recoverSince(new Date(Date.now() - 60_000), []));
      const full = await timed(() => storage.jobs.recoverExpired());
      rows.push([
        (k * step).toLocaleString('en-US'),
        cpu.toFixed(3),
        count.toFixed(2),
        recovery.toFixed(2),
        full.toFixed(2),
      ]);
    }
    rows.push(['last / first', `${(cpu / first!).toFixed(2)}×`, '', '', '']);
    return rows;
  } finally {
    await close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function history({ printTable, quick }: { printTable: Table; quick: boolean }) {
  const databases: { name: string; url?: string | undefined }[] = [{ name: 'embedded PGlite' }];
  if (process.env.DATABASE_URL) databases.push({ name: 'PostgreSQL', url: process.env.DATABASE_URL });
  const [steps, step] = quick ? [2, 2_000] : [8, 10_000];
  for (const database of databases) {
    const rows = await one(database.url, steps, step);
    printTable(
      `11. Database work per job as history grows (${database.name}; the gateway's storage, ${IN_FLIGHT} jobs in flight, settled every ${SETTLE_EVERY.toLocaleString('en-US')}; CPU of this process${database.url ? ', not the server' : ', the engine included'})`,
      [
        [
          'jobs served',
          'CPU ms per job (last step)',
          'count of what waits, ms (every 1 s)',
          'recovery of lapsed leases, ms (every 10 s)',
          'recovery over every running job, ms (at start; every 10 s before)',
        ],
        ...rows,
      ],
    );
  }
}
