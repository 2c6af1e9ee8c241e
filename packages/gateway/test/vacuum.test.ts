import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { Storage } from '../src/index.ts';
import {
  createApiKey,
  MODEL,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from './helpers/grid.ts';
import { openTestStorage, serveTestJob, testJob } from './helpers/storage.ts';
import { ScriptedWorker } from './helpers/worker.ts';

// Embedded PGlite runs no autovacuum: the gateway vacuums it (`Database.vacuum`, `database.vacuumIntervalMs`).
// Both tests run on PGlite whatever DATABASE_URL says: a server vacuums itself.
const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const gateway = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
const KEY = 'kvacuum';
const TABLES = ['jobs', 'dispatches', 'receipts'];

/** Dead row versions per table, as the statistics say once flushed. */
async function deadRows(storage: Storage): Promise<Record<string, number>> {
  await storage.db.query('SELECT pg_stat_force_next_flush()');
  const rows = await storage.db.query<{ table: string; dead: number }>(
    'SELECT relname AS table, n_dead_tup::int AS dead FROM pg_stat_user_tables WHERE relname = ANY($1)',
    [TABLES],
  );
  return Object.fromEntries(rows.map((r) => [r.table, Number(r.dead)]));
}

describe('embedded PGlite', () => {
  let storage: Storage;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ storage, close } = await openTestStorage('vacuum', {}, { keyId: KEY, payer }));
    await storage.receiptNumbers.init(gateway, 0n);
  });
  afterAll(async () => {
    await close?.();
  });

  /** Bytes of the request tables with their indexes and TOAST. */
  const size = async () => {
    const rows = await storage.db.query<{ bytes: string }>(
      'SELECT sum(pg_total_relation_size(t::regclass))::text AS bytes FROM unnest($1::text[]) AS t',
      [TABLES],
    );
    return Number(rows[0]!.bytes);
  };
  /** `n` requests reserved and committed as the gateway does, 50 at a time (group commit). */
  const serve = async (n: number) => {
    for (let done = 0; done < n; done += 50)
      await Promise.all(
        Array.from({ length: 50 }, () =>
          serveTestJob(storage, testJob({ keyId: KEY, payer, reservedFee: 100n }), {
            gateway,
            worker,
            fee: 40n,
          }),
        ),
      );
  };

  test('a vacuum reclaims what requests left behind; the next requests reuse that space', async () => {
    const before = await size();
    await serve(1_000);
    const first = (await size()) - before;
    // Each request left its job's and its dispatch's first versions behind (completed, receipted).
    const dead = await deadRows(storage);
    expect(dead.jobs).toBeGreaterThanOrEqual(1_000);
    expect(dead.dispatches).toBeGreaterThanOrEqual(1_000);

    const done = await storage.db.vacuum();
    const byTable = Object.fromEntries(done.map((t) => [t.table, t]));
    expect(byTable.jobs?.deadRows).toBeGreaterThanOrEqual(1_000);
    expect(byTable.dispatches?.deadRows).toBeGreaterThanOrEqual(1_000);
    // Receipts are only inserted here: nothing dead, not vacuumed.
    expect(byTable.receipts).toBeUndefined();
    expect(await deadRows(storage)).toMatchObject({ jobs: 0, dispatches: 0 });
    // Nothing more is due until rows die again.
    expect(await storage.db.vacuum()).toEqual([]);

    const after = await size();
    await serve(1_000);
    const second = (await size()) - after;
    // The same thousand requests again: the dead versions' space is reused, so the tables grow by about
    // the live rows only (without the vacuum, as much as the first time).
    expect(second).toBeLessThan(first * 0.75);

    // Nothing live was touched: every receipt and completed job is there.
    const [counts] = await storage.db.query<{ receipts: number; succeeded: number }>(
      `SELECT (SELECT count(*)::int FROM receipts) AS receipts,
              (SELECT count(*)::int FROM jobs WHERE status = 'succeeded') AS succeeded`,
    );
    expect(counts).toEqual({ receipts: 2_000, succeeded: 2_000 });
  });
});

describe('the gateway on embedded PGlite', () => {
  let grid: TestGrid;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  let scripted: ScriptedWorker;

  beforeAll(async () => {
    grid = await startTestGrid();
    gw = await startTestGateway(grid, {
      databaseUrl: undefined,
      databaseSchema: undefined,
      'database.vacuumIntervalMs': 100,
      'rateLimit.requestsPerMinute': 10_000,
      'rateLimit.burst': 1_000,
      'rateLimit.payerRequestsPerMinute': 10_000,
    });
    scripted = new ScriptedWorker({
      url: gw.workerUrl,
      operatorKey: roles.operatorA.privateKey,
      owner: roles.workerA.address,
      models: [MODEL],
    });
    await scripted.connect();
  });
  afterAll(async () => {
    await scripted?.close();
    await gw?.stop();
    await grid?.stop();
  });

  test('vacuums its tables on its own once requests left dead rows', async () => {
    const key = await createApiKey(gw, roles.payer.privateKey);
    for (let i = 0; i < 80; i++) {
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL.name,
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 4,
        }),
      });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const db = gw.db;
    expect(db.kind).toBe('pglite');
    // 80 completed jobs: 80 dead versions, past autovacuum's rule (50 + 20 % of 80 live).
    await vi.waitFor(
      async () => {
        const [row] = await db.query<{ n: number }>(
          `SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = 'jobs'`,
        );
        expect(Number(row?.n)).toBeGreaterThan(0);
      },
      { timeout: 15_000, interval: 100 },
    );
  });
});
