import type { Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Storage } from '../src/index.ts';
import { commitReceipt } from '../src/storage/commit.ts';
import type { BatchOp, Database, Sql } from '../src/storage/db.ts';
import { createJobStore, type NewJob } from '../src/storage/jobs.ts';
import { createReceiptStore } from '../src/storage/receipts.ts';
import { openTestStorage, settleWaiting, testCommit, testJob } from './helpers/storage.ts';

// What a request and the periodic passes cost must not grow with the jobs a gateway has served: a
// finished job leaves index entries behind (its lease, its receipt number, its receipt waiting for a
// batch) until the table is vacuumed, which embedded PGlite never does by itself, and a statement that
// finds its rows by walking those entries gets slower with every request ever served. The work is
// measured in the pages (buffer accesses) each statement makes, from Postgres's own per-transaction
// counters: exact, and the same on any machine. After H jobs and again after 4H: both sizes keep every
// index at the same depth (two levels), so a keyed lookup costs the same pages at both.
const H = 500;
const KEY = 'khistory0001';
const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const gateway = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
const modelId = `0x${'ab'.repeat(32)}` as Hex;
let storage: Storage;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ storage, close } = await openTestStorage(
    'gw_history',
    { url: process.env.DATABASE_URL || undefined },
    { keyId: KEY, payer },
  ));
  // A server's autovacuum would clean up behind the test's back (and PGlite has none): the history stays.
  if (storage.db.kind === 'postgres') {
    for (const t of ['jobs', 'receipts', 'dispatches', 'payers', 'batches'])
      await storage.db.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
  }
  await storage.receiptNumbers.init(gateway, 0n);
});

afterAll(async () => {
  await close?.();
});

const newJob = () => testJob({ keyId: KEY, payer, reservedFee: 100n, modelId });
const commitArgs = ({ job, seq }: Reserved) => testCommit(job, seq, { gateway, worker, fee: 20n });

type Reserved = { job: NewJob; seq: bigint };

/** Reserves `n` jobs, each with its first dispatch numbered, as concurrent requests do (batched). */
async function reserve(n: number): Promise<Reserved[]> {
  const jobs = Array.from({ length: n }, newJob);
  const expiresAt = new Date(Date.now() + 60_000);
  const out = await Promise.all(
    jobs.map((job) => storage.jobs.insertReserved(job, 10n ** 30n, { gateway, worker, expiresAt })),
  );
  return jobs.map((job, i) => ({ job, seq: out[i]!.seq! }));
}

/** Serves `n` jobs end to end (reserved, committed in groups as under load), settling every 100. */
async function serve(n: number): Promise<void> {
  for (let done = 0; done < n; done += 100) {
    const reserved = await reserve(100);
    const stored = await Promise.all(reserved.map((r) => storage.commitReceipt(...commitArgs(r)).stored));
    expect(stored.every(Boolean)).toBe(true);
    expect(await settleWaiting(storage.db, gateway)).toBe(100);
  }
  // The next pass deletes the settled range's receipt numbers (nothing waits: no batch).
  const last = (await storage.receipts.listBatches(1))[0]!;
  const next = last.firstSeq! + last.seqCount!;
  expect(await storage.receipts.createBatch({ gateway, from: next, max: 100_000 }, () => undefined)).toBe(
    undefined,
  );
  expect(
    await storage.db.query('SELECT 1 FROM dispatches WHERE seq < $1 LIMIT 1', [next.toString()]),
  ).toEqual([]);
  // A server analyzes as it vacuums (autovacuum, off here so that the dead entries stay): its planner
  // knows the tables' sizes. PGlite never does either.
  if (storage.db.kind === 'postgres')
    await storage.db.query('ANALYZE jobs, receipts, dispatches, batches, payers');
}

/** A `Database` over one transaction whose batch ops run as one group when `flush` is called. */
function grouped(tx: Sql) {
  const queued: { op: BatchOp<unknown, unknown>; item: unknown; resolve: (out: unknown) => void }[] = [];
  const db: Database = {
    kind: storage.db.kind,
    query: (text, params) => tx.query(text, params),
    transaction: (fn) => tx.transaction(fn),
    batch: <I, O>(op: BatchOp<I, O>, item: I) =>
      new Promise<O>((resolve) =>
        queued.push({ op: op as BatchOp<unknown, unknown>, item, resolve: resolve as (o: unknown) => void }),
      ),
    settle: async () => {},
    vacuum: async () => [],
    close: async () => {},
  };
  return {
    db,
    /** Runs what waits as one group; returns the statements it ran. */
    async flush(): Promise<{ text: string; params: readonly unknown[] }[]> {
      const group = queued.splice(0);
      const ran: { text: string; params: readonly unknown[] }[] = [];
      const recording: Sql = {
        query: (text, params = []) => {
          ran.push({ text, params });
          return tx.query(text, params);
        },
        transaction: (fn) => fn(recording),
      };
      const outs = await group[0]!.op.run(
        recording,
        group.map((q) => q.item),
      );
      for (const [i, q] of group.entries()) q.resolve(outs[i]);
      return ran;
    },
  };
}

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
};

/** Every node of a plan that reads `relation` (the scans, not the node that writes it). */
function readsOf(plan: PlanNode, relation: string): PlanNode[] {
  const here = plan['Relation Name'] === relation && plan['Node Type'] !== 'ModifyTable' ? [plan] : [];
  return [...here, ...(plan.Plans ?? []).flatMap((p) => readsOf(p, relation))];
}

/** Pages (blocks) every relation of this schema has been read from so far in this transaction. */
async function pagesSoFar(tx: Sql): Promise<number> {
  const [row] = await tx.query<{ n: string }>(
    `SELECT COALESCE(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0)::text AS n FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace`,
  );
  return Number(row!.n);
}

/**
 * How Postgres plans a prepared statement: from each run's parameters, or once for all runs (as it may
 * choose to after five runs of one statement on one connection, which pooled connections reach at
 * different times: measured in the mode of the moment, two measurements could compare two plans).
 */
type PlanMode = 'force_custom_plan' | 'force_generic_plan';
const MODES: readonly PlanMode[] = ['force_custom_plan', 'force_generic_plan'];

/** The pages each step of a request's and of the periodic passes' work touches, with H × k jobs served. */
async function measure(mode: PlanMode): Promise<Record<string, number>> {
  // Two of each: the batched statements, with as little fixed work as possible around them.
  const fresh = await reserve(2);
  const unused: bigint[] = [];
  const pages = await storage.transaction(async (tx) => {
    await tx.query(`SET LOCAL plan_cache_mode = ${mode}`);
    const out: Record<string, number> = {};
    const step = async (name: string, run: () => Promise<unknown>) => {
      const before = await pagesSoFar(tx);
      await run();
      out[name] = (await pagesSoFar(tx)) - before;
    };
    const g = grouped(tx);
    await step('reserve 2 (one statement)', async () => {
      const jobs = createJobStore(g.db);
      const expiresAt = new Date(Date.now() + 60_000);
      const done = Array.from({ length: 2 }, () =>
        jobs.insertReserved(newJob(), 10n ** 30n, { gateway, worker, expiresAt }),
      );
      await g.flush();
      const reserved = await Promise.all(done);
      expect(reserved.every((r) => r.inserted)).toBe(true);
      unused.push(...reserved.map((r) => r.seq!));
    });
    let commit: { text: string; params: readonly unknown[] }[] = [];
    await step('commit 2 receipts (one statement)', async () => {
      const done = fresh.map((r) => commitReceipt(g.db, ...commitArgs(r)));
      commit = await g.flush();
      expect((await Promise.all(done)).every(Boolean)).toBe(true);
    });
    // The numbers are found by key: whatever index the planner takes, its condition names the number
    // (a scan of the in-flight index by status alone walks an entry for every number ever receipted).
    expect(commit).toHaveLength(1);
    const [explained] = await tx.query<{ 'QUERY PLAN': unknown }>(
      `EXPLAIN (FORMAT JSON) ${commit[0]!.text}`,
      commit[0]!.params,
    );
    const raw = explained!['QUERY PLAN'];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
    const reads = readsOf(plan[0]!.Plan, 'dispatches');
    expect(reads.length).toBeGreaterThan(0);
    for (const node of reads)
      expect(node['Index Cond'] ?? node['Recheck Cond'] ?? node['Node Type']).toMatch(/\bseq\b/);
    await step('settlement: count what waits', async () => {
      expect((await createReceiptStore(tx).countWaiting(gateway)).unbatched).toBe(2);
    });
    await step('settlement: batch and settle what waits', async () => {
      expect(await settleWaiting(tx, gateway)).toBe(2);
    });
    await step('recovery of lapsed leases', async () => {
      await createJobStore(g.db).recoverSince(new Date(Date.now() - 60_000), []);
    });
    // The control: the recovery pass over every running job's lease (the one at start), as this
    // gateway ran every 10 s, walks every job ever served. It has no parameters (one plan either way),
    // and a pass marks the dead entries it walks, which changes what the next one reads: once per
    // history, in the first mode measured.
    if (mode === MODES[0])
      await step('control: a pass over every running job', () => createJobStore(g.db).recoverExpired());
    return out;
  });
  // Those jobs never ran: their numbers are given up, so the next batch's range is not held open.
  for (const seq of unused) await storage.receiptNumbers.release(gateway, seq);
  return pages;
}

describe('work per request and per pass with history', () => {
  test(`a request's statements and the periodic passes touch no more pages after ${4 * H} jobs than after ${H}, planned either way`, async () => {
    await serve(H);
    const first = new Map<PlanMode, Record<string, number>>();
    for (const mode of MODES) first.set(mode, await measure(mode));
    await serve(3 * H);
    for (const mode of MODES) {
      const { 'control: a pass over every running job': c1, ...a } = first.get(mode)!;
      const { 'control: a pass over every running job': c2, ...b } = await measure(mode);
      // The control walks every job: 3H more of them show (or this history proves nothing).
      if (mode === MODES[0]) expect(c2! - c1!).toBeGreaterThan(100);
      // Some slack: the free-space map and small tables grow too, and on a server where a row's new
      // version lands (its own page or another, so one index entry more or less) varies by ±10 pages
      // from run to run in the settlement step. A walk over 3H more jobs' entries costs 100 and more
      // pages more here (the old statements: count 57 → 162, batch and settle 143 → 257).
      for (const [name, pages] of Object.entries(b))
        expect(pages, `${name} (${mode})`).toBeLessThanOrEqual(Math.ceil(a[name]! * 1.2) + 4);
    }
  }, 180_000);
});
