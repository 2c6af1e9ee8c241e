/**
 * 12. What embedded PGlite costs a request, by how many requests share a statement. Each request is
 * reserved and committed by the gateway's own batched statements (`insertReserved`, `commitReceipt`),
 * `n` at a time, as group commit runs them when `n` requests wait together (n = 1: each alone, its own
 * implicit transaction, as at c=1). Printed: CPU of this process per request (the engine runs in it),
 * as the gateway runs them and, to show their share, with the triggers that keep the payers' reserved
 * and unsettled totals (migration 10) switched off. The bench's gateway at c=64 groups about ten
 * requests per statement (twenty items per transaction, reserves and commits together).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from 'viem';
import { openTestStorage, serveTestJob, testJob } from '../packages/gateway/test/helpers/storage.ts';

type Table = (title: string, rows: (string | number)[][]) => void;

const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const gateway = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
const KEY = 'kbenchgroups';
const GROUPS = [1, 4, 16, 64];

/** A fresh PGlite database serving requests `n` at a time, with or without the payer-total triggers. */
async function server(triggers: boolean) {
  const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-groups-'));
  const { storage, close } = await openTestStorage(
    'bench_groups',
    { dir: join(dir, 'db') },
    { keyId: KEY, payer },
  );
  await storage.receiptNumbers.init(gateway, 0n);
  if (!triggers)
    for (const t of ['jobs', 'receipts']) await storage.db.query(`ALTER TABLE ${t} DISABLE TRIGGER USER`);
  const modelId = `0x${'be'.repeat(32)}` as const;
  const serveOne = async () => {
    const job = testJob(
      { keyId: KEY, payer, reservedFee: 100n, modelId },
      { promptTokenIds: Array.from({ length: 12 }, (_, i) => 1_000 + i) },
    );
    await serveTestJob(storage, job, { gateway, worker, fee: 40n });
  };
  return {
    /** CPU ms per request of `count` requests served `n` at a time. */
    async serve(n: number, count: number): Promise<number> {
      const c0 = process.cpuUsage();
      for (let done = 0; done < count; done += n) await Promise.all(Array.from({ length: n }, serveOne));
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000 / count;
    },
    async close() {
      await close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function dbGroups({ printTable, quick }: { printTable: Table; quick: boolean }) {
  const jobs = quick ? 256 : 1_024;
  const rounds = quick ? 1 : 3;
  const rows: (string | number)[][] = [];
  for (const n of GROUPS) {
    const on = await server(true);
    const off = await server(false);
    try {
      // Warm both (prepared statements, plans, the JIT), then measure them in turn, round after round:
      // the machine's speed drifts, so each figure is its variant's least disturbed round.
      await on.serve(n, 256);
      await off.serve(n, 256);
      let a = Number.POSITIVE_INFINITY;
      let b = Number.POSITIVE_INFINITY;
      for (let r = 0; r < rounds; r++) {
        a = Math.min(a, await on.serve(n, jobs));
        b = Math.min(b, await off.serve(n, jobs));
      }
      rows.push([n, a.toFixed(3), b.toFixed(3), `${(((a - b) / a) * 100).toFixed(0)} %`]);
    } finally {
      await on.close();
      await off.close();
    }
  }
  printTable(
    `12. Embedded PGlite's work per request by requests per statement (reserve + commit, the gateway's batched statements; CPU of this process, the engine included; the least of ${rounds} round${rounds === 1 ? '' : 's'} of ${jobs} requests, alternating)`,
    [
      [
        'requests per statement',
        'CPU ms per request',
        'without the payer-total triggers',
        'the triggers’ share',
      ],
      ...rows,
    ],
  );
}
