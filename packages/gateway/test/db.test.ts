import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { type Database, openDatabase, type Sql } from '../src/storage/db.ts';

// The SQL layer runs every statement as a prepared one (PGlite: its own statement cache over the wire
// protocol; PostgreSQL: node-postgres named statements). Values, errors, transactions and the one
// PGlite session's isolation must be exactly what plain queries gave. PGlite by default; PostgreSQL
// too when DATABASE_URL is set.

const url = process.env.DATABASE_URL || undefined;
const schema = url ? `gw_db_${randomBytes(5).toString('hex')}` : 'public';
let db: Database;

beforeAll(async () => {
  db = await openDatabase({ url, dir: 'memory://', schema, poolSize: 2 });
  await db.query(
    `CREATE TABLE t (id text PRIMARY KEY, n numeric(78, 0), j jsonb, at timestamptz, ok boolean, i integer, f double precision)`,
  );
});
afterAll(async () => {
  if (url) await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db?.close();
});

describe('prepared statements', () => {
  test('values go in and come out as plain queries give them, on every run of a statement', async () => {
    const at = new Date('2026-12-06T10:00:00.123Z');
    const insert = 'INSERT INTO t (id, n, j, at, ok, i, f) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)';
    for (const k of [1, 2, 3, 4, 5, 6, 7, 8])
      await db.query(insert, [
        `v${k}`,
        (2n ** 200n + BigInt(k)).toString(),
        JSON.stringify({ k, s: 'é ✓' }),
        at,
        k % 2 === 0,
        k,
        k / 4,
      ]);
    await db.query(insert, ['nulls', null, null, null, null, null, null]);
    const rows = await db.query(
      'SELECT id, n::text AS n, j, at, ok, i, f FROM t WHERE id = ANY($1::text[]) ORDER BY id',
      [['v7', 'nulls']],
    );
    expect(rows).toEqual([
      { id: 'nulls', n: null, j: null, at: null, ok: null, i: null, f: null },
      { id: 'v7', n: (2n ** 200n + 7n).toString(), j: { k: 7, s: 'é ✓' }, at, ok: false, i: 7, f: 1.75 },
    ]);
    // A statement without rows answers none; one returning rows it changed answers them.
    expect(await db.query('UPDATE t SET i = i + 1 WHERE id = $1', ['nope'])).toEqual([]);
    expect(await db.query('UPDATE t SET i = i + 1 WHERE id = $1 RETURNING i', ['v1'])).toEqual([{ i: 2 }]);
  });

  test('more distinct statements than the cache keeps: each still answers right, the first ones again too', async () => {
    const texts = Array.from({ length: 300 }, (_, k) => `SELECT $1::int + ${k} AS x`);
    for (const [k, text] of texts.entries()) expect(await db.query(text, [k])).toEqual([{ x: 2 * k }]);
    for (const k of [0, 1, 150, 299]) expect(await db.query(texts[k]!, [1])).toEqual([{ x: 1 + k }]);
  });

  test('a failing statement is the database error, without the values it carried; the next one runs', async () => {
    const secret = 'the prompt text no log may hold';
    const error = await db
      .query('INSERT INTO t (id, j) VALUES ($1, $2::jsonb)', ['v1', JSON.stringify({ secret })])
      .catch((e: unknown) => e as Error & { code?: string });
    expect(error).toMatchObject({ code: '23505' });
    expect(JSON.stringify(error)).not.toContain(secret);
    expect(String(error)).not.toContain(secret);
    await expect(db.query('SELECT nonsense FROM t')).rejects.toMatchObject({ code: '42703' });
    await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
    expect(await db.query('SELECT count(*)::int AS n FROM t WHERE id = $1', ['v1'])).toEqual([{ n: 1 }]);
  });

  test('a transaction: an error rolls all of it back; a statement issued meanwhile never joins it', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t (id) VALUES ($1)', ['tx-a']);
        await tx.query('INSERT INTO t (id) VALUES ($1)', ['v1']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await db.query('SELECT id FROM t WHERE id = $1', ['tx-a'])).toEqual([]);

    // A transaction holds an uncommitted row, then rolls back; a statement issued meanwhile must run
    // outside it (PGlite has one session: after it; PostgreSQL: on another connection), never see the row.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let inside!: () => void;
    const started = new Promise<void>((r) => {
      inside = r;
    });
    const tx = db.transaction(async (t) => {
      await t.query('INSERT INTO t (id) VALUES ($1)', ['tx-b']);
      inside();
      await held;
      throw new Error('rolled back on purpose');
    });
    await started;
    const outside = db.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE id = $1', ['tx-b']);
    await new Promise((r) => setImmediate(r));
    release();
    await expect(tx).rejects.toThrow('rolled back on purpose');
    expect(await outside).toEqual([{ n: 0 }]);
    expect(await db.query('SELECT count(*)::int AS n FROM t WHERE id = $1', ['tx-b'])).toEqual([{ n: 0 }]);
  });
});

describe('deferred batch items (a journaled commit)', () => {
  test('one alone waits out its delay, then runs; a statement issued meanwhile takes it along at once, after it', async () => {
    const ran: string[] = [];
    const op = {
      name: 'deferred test op',
      async run(sql: Sql, items: readonly string[]) {
        for (const item of items)
          await sql.query('INSERT INTO t (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [item]);
        ran.push(...items);
        return items.map(() => true);
      },
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const first = db.batch(op, 'd1', 5_000);
      let done = false;
      void first.then(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(4_999);
      expect(done).toBe(false);
      expect(ran).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      await first;
      expect(ran).toEqual(['d1']);
    } finally {
      vi.useRealTimers();
    }
    // Deferred by a minute: a plain statement issued after it starts the group now, and sees its row.
    const second = db.batch(op, 'd2', 60_000);
    const rows = await db.query<{ id: string }>('SELECT id FROM t WHERE id = $1', ['d2']);
    expect(rows).toEqual([{ id: 'd2' }]);
    expect(await second).toBe(true);
    // And a transaction waits for it too.
    const third = db.batch(op, 'd3', 60_000);
    const seen = await db.transaction((tx) =>
      tx.query<{ id: string }>('SELECT id FROM t WHERE id = $1', ['d3']),
    );
    expect(seen).toEqual([{ id: 'd3' }]);
    expect(await third).toBe(true);
  });
});
