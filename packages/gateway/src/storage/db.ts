import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { PGlite, parse as pgParse, protocol } from '@electric-sql/pglite';
import pg from 'pg';

export type Row = Record<string, unknown>;

/**
 * The one SQL layer: the same statements run on embedded PGlite and on a PostgreSQL server.
 * Values go in as parameters only. Bigints travel as decimal strings (`numeric` columns, `::text`
 * casts on the way out) because the two drivers disagree on int8.
 */
export interface Sql {
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}

/**
 * A write that many requests issue at once, run for all of them waiting at that moment as ONE
 * statement (`Database.batch`). `run` must be a single statement (atomic without a transaction: a
 * failed group reruns each item alone) and return one output per item, in order.
 */
export type BatchOp<I, O> = {
  readonly name: string;
  run(sql: Sql, items: readonly I[]): Promise<O[]>;
};

export interface Database extends Sql {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `op` for `item` together with every other item of the same op waiting at this moment, in
   * one statement, committed with the rest of the group (group commit); resolves after the commit.
   *
   * `deferMs`: the item may wait up to that long for other work to join it (its caller already has
   * what it needs, e.g. a commit whose record is journaled). It runs sooner with the next group anyone
   * starts, and first in that group; and any statement or transaction issued after it sees its writes
   * (a transaction waits for it, a plain statement runs after it in the same group).
   */
  batch<I, O>(op: BatchOp<I, O>, item: I, deferMs?: number): Promise<O>;
  /** Resolves once every item batched before this call is committed (or has failed). */
  settle(): Promise<void>;
  /**
   * Reclaims the row versions that updates and deletes left behind, where the database does not do it
   * itself: embedded PGlite runs no autovacuum (one process, no background workers), so every request's
   * old versions of its job, dispatch and receipt rows stayed on disk and in the indexes for good. Each
   * table with more dead rows than autovacuum's default rule allows (50 + 20 % of its live rows) is
   * vacuumed, one statement each; PGlite runs nothing else meanwhile. A PostgreSQL server's autovacuum
   * does this: nothing to do there.
   */
  vacuum(): Promise<Vacuumed[]>;
  close(): Promise<void>;
}

/** A table `Database.vacuum` vacuumed: its dead rows before, and how long PGlite was busy with it. */
export type Vacuumed = { table: string; deadRows: number; ms: number };

/** Autovacuum's defaults (`autovacuum_vacuum_threshold`, `autovacuum_vacuum_scale_factor`). */
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE_FACTOR = 0.2;

export type OpenDatabaseParameters = {
  /** postgres://… for a server; undefined for PGlite. */
  url?: string | undefined;
  /** PGlite data directory, or `memory://`. */
  dir: string;
  schema: string;
  poolSize: number;
};

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new RangeError(`invalid schema name ${name}`);
  return `"${name}"`;
}

export async function openDatabase(p: OpenDatabaseParameters): Promise<Database> {
  return p.url ? openPostgres(p.url, p.schema, p.poolSize) : openPglite(p.dir, p.schema);
}

/** A PGlite "directory" that keeps everything in memory (nothing survives the process). */
export const inMemory = (dir: string) => dir === 'memory://' || dir === ':memory:';

async function openPglite(dir: string, schema: string): Promise<Database> {
  const memory = inMemory(dir);
  if (!memory) mkdirSync(dir, { recursive: true });
  const db = new PGlite(memory ? undefined : dir);
  await db.waitReady;
  if (schema !== 'public') {
    await db.exec(
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; SET search_path TO ${quoteIdent(schema)}`,
    );
  }
  const statements = preparedStatements(db);
  // Outside a transaction a statement takes PGlite's transaction lock too (as `db.query` does); inside
  // one, the transaction holds it.
  const alone = (text: string, params: readonly unknown[]) =>
    db._runExclusiveTransaction(() => db._runExclusiveQuery(() => statements.run(text, params)));
  const inTransaction = (text: string, params: readonly unknown[]) =>
    db._runExclusiveQuery(() => statements.run(text, params));
  const group = createGroupCommit({
    alone,
    transaction: (fn) => db.transaction(() => fn(wrap(true))),
  });
  const wrap = (inTx: boolean): Sql => {
    const sql: Sql = {
      async query<T extends Row>(text: string, params: readonly unknown[] = []) {
        // Outside a transaction, a statement commits with the others waiting at the same moment.
        if (!inTx) return group.batch(QUERY, { text, params }) as Promise<T[]>;
        return (await inTransaction(text, params)) as T[];
      },
      async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
        if (inTx) return fn(sql);
        // What was batched before it (a deferred commit) is committed first: the transaction sees it.
        if (group.deferred()) await group.settle();
        // PGlite runs one statement at a time; its transaction() holds the connection for the callback.
        return db.transaction(() => fn(wrap(true)));
      },
    };
    return sql;
  };
  const sql = wrap(false);
  return {
    kind: 'pglite',
    query: sql.query,
    transaction: sql.transaction,
    batch: group.batch,
    settle: group.settle,
    async vacuum() {
      // Statistics reach the view at most once a second; the next report flushes whatever is pending.
      await sql.query('SELECT pg_stat_force_next_flush()');
      const due = await sql.query<{ table: string; dead: number }>(
        `SELECT relname AS table, n_dead_tup::int AS dead FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND n_dead_tup > $1::int + $2::float8 * n_live_tup
         ORDER BY n_dead_tup DESC`,
        [VACUUM_THRESHOLD, VACUUM_SCALE_FACTOR],
      );
      const out: Vacuumed[] = [];
      for (const { table, dead } of due) {
        const started = performance.now();
        // Not in a transaction (VACUUM refuses one): PGlite's exec waits for the open one to end.
        await db.exec(`VACUUM "${table.replaceAll('"', '""')}"`);
        out.push({ table, deadRows: Number(dead), ms: performance.now() - started });
      }
      return out;
    },
    async close() {
      await group.settle();
      if (!db.closed) await db.close();
    },
  };
}

/** Prepared statements kept per PGlite instance, at most (the least recently used is closed first). */
const MAX_PREPARED = 256;

/**
 * Every statement on PGlite runs as a named prepared statement, parsed and described once per text:
 * each later run is one bind/execute/sync exchange with the engine instead of PGlite's six (parse,
 * describe, bind, describe, execute, sync), and Postgres plans it from its cache (a request's two
 * writes cost about 0.5 ms each instead of 1.3 ms here; bench/side-by-side.ts). Parameters are
 * serialized and rows parsed exactly as `PGlite.query` does (the instance's serializers and parsers
 * for the types Postgres describes). The caller holds PGlite's locks.
 */
function preparedStatements(db: PGlite) {
  const { serialize } = protocol;
  const cache = new Map<string, { name: string; types: number[] }>();
  let counter = 0;
  const exchange = (...messages: Uint8Array[]) => {
    const out = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
    let at = 0;
    for (const m of messages) {
      out.set(m, at);
      at += m.length;
    }
    return db.execProtocolStream(out, { syncToFs: false });
  };
  async function prepare(text: string) {
    const name = `aipg_${++counter}`;
    const described = await exchange(
      serialize.parse({ name, text }),
      serialize.describe({ type: 'S', name }),
      serialize.sync(),
    );
    const statement = { name, types: pgParse.parseDescribeStatementResults(described) };
    cache.set(text, statement);
    if (cache.size > MAX_PREPARED) {
      const [oldText, old] = cache.entries().next().value!;
      cache.delete(oldText);
      await exchange(serialize.close({ type: 'S', name: old.name }), serialize.sync());
    }
    return statement;
  }
  return {
    async run(text: string, params: readonly unknown[]): Promise<Row[]> {
      let statement = cache.get(text);
      if (statement) {
        cache.delete(text);
        cache.set(text, statement);
      } else statement = await prepare(text);
      const types = statement.types;
      const values = params.map((v, i) => {
        if (v === null || v === undefined) return null;
        const serializer = db.serializers[types[i]!];
        return serializer ? serializer(v) : String(v);
      });
      const messages = await exchange(
        serialize.bind({ statement: statement.name, values }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      );
      if (!db.isInTransaction()) await db.syncToFs();
      return (pgParse.parseResults(messages, db.parsers)[0]?.rows ?? []) as Row[];
    },
  };
}

/** A plain statement issued outside a transaction, as a batch op: the group runs each in turn. */
const QUERY: BatchOp<{ text: string; params: readonly unknown[] }, Row[]> = {
  name: 'query',
  async run(sql, items) {
    const out: Row[][] = [];
    for (const item of items) out.push(await sql.query(item.text, item.params));
    return out;
  },
};

type Queued = {
  op: BatchOp<unknown, unknown>;
  item: unknown;
  /** Batched with `deferMs`: runs first in its group; `at`: when it must start at the latest. */
  deferred: boolean;
  at: number;
  resolve: (out: unknown) => void;
  reject: (error: unknown) => void;
};

/** Waits for the items batched before it; touches nothing (`Database.settle`). */
const SETTLE: BatchOp<undefined, undefined> = {
  name: 'settle',
  async run(_sql, items) {
    return items.map(() => undefined);
  },
};

/**
 * Group commit. Work issued while a group is running waits for it, then runs together in one
 * transaction: the items of each batch op as one statement, plain statements one by one; each caller's
 * promise settles only after that transaction commits. Alone, an item runs at once as before. Under
 * load this turns one commit and one statement per request and write into one of each per group
 * (embedded PGlite pays ~0.25 ms a commit and ~0.15 ms a statement on top of the work itself). If
 * anything in the group fails, its transaction is rolled back and every item runs again alone, so
 * each caller gets exactly its own result or error, as if it had run alone.
 */
function createGroupCommit(db: {
  /** One statement in its own (implicit) transaction. */
  alone(text: string, params: readonly unknown[]): Promise<Row[]>;
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}) {
  const autocommit: Sql = {
    query: <T extends Row>(text: string, params: readonly unknown[] = []) =>
      db.alone(text, params) as Promise<T[]>,
    transaction: (fn) => db.transaction(fn),
  };
  let queue: Queued[] = [];
  let running = false;

  async function runAlone(q: Queued): Promise<void> {
    try {
      const [out] = await q.op.run(autocommit, [q.item]);
      q.resolve(out);
    } catch (error) {
      q.reject(error);
    }
  }

  async function runGroup(group: Queued[]): Promise<void> {
    const byOp = new Map<BatchOp<unknown, unknown>, Queued[]>();
    // Deferred items first: whatever was issued after them (a read of what they write) runs after them.
    for (const q of group) if (q.deferred && !byOp.has(q.op)) byOp.set(q.op, []);
    for (const q of group) {
      const same = byOp.get(q.op);
      if (same) same.push(q);
      else byOp.set(q.op, [q]);
    }
    let outs: Map<Queued, unknown> | undefined;
    try {
      outs = await db.transaction(async (tx) => {
        const done = new Map<Queued, unknown>();
        for (const [op, qs] of byOp) {
          const results = await op.run(
            tx,
            qs.map((q) => q.item),
          );
          if (results.length !== qs.length)
            throw new Error(`batch op ${op.name} returned ${results.length} results for ${qs.length} items`);
          for (const [i, q] of qs.entries()) done.set(q, results[i]);
        }
        return done;
      });
    } catch {
      outs = undefined;
    }
    if (outs) for (const q of group) q.resolve(outs.get(q));
    else for (const q of group) await runAlone(q);
  }

  /**
   * Runs groups while anything not deferred waits (deferred items ride along, first); `due`: the
   * deferred items' time is up, so they run even alone. Deferred items left over wait for their time.
   */
  async function drain(due = false): Promise<void> {
    running = true;
    clearTimeout(timer);
    timer = undefined;
    try {
      while (queue.length > deferredCount || (due && queue.length > 0)) {
        due = false;
        const group = queue;
        queue = [];
        deferredCount = 0;
        if (group.length === 1) await runAlone(group[0]!);
        else await runGroup(group);
      }
    } finally {
      running = false;
    }
    if (queue.length > 0) arm();
  }

  /** Deferred items waiting, and the timer that starts them when the first one's time is up. */
  let deferredCount = 0;
  let timer: NodeJS.Timeout | undefined;

  function arm() {
    clearTimeout(timer);
    let at = Number.POSITIVE_INFINITY;
    for (const q of queue) if (q.at < at) at = q.at;
    timer = setTimeout(
      () => {
        timer = undefined;
        if (!running && queue.length > 0) void drain(true);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref?.();
  }

  function batch<I, O>(op: BatchOp<I, O>, item: I, deferMs?: number): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const deferred = deferMs !== undefined && deferMs > 0;
      queue.push({
        op: op as BatchOp<unknown, unknown>,
        item,
        deferred,
        at: deferred ? Date.now() + deferMs : 0,
        resolve: resolve as (out: unknown) => void,
        reject,
      });
      if (deferred) deferredCount += 1;
      // A running drain takes what is not deferred next, and arms the timer for what is when it ends.
      if (running) return;
      if (deferred) arm();
      else {
        // Started after this turn's I/O callbacks: everything issued by the requests read in the same
        // poll (embedded PGlite blocks the loop while it runs, so they arrive together) joins the group.
        running = true;
        setImmediate(() => void drain());
      }
    });
  }

  return {
    batch,
    /** Items batched with `deferMs` that have not run yet. */
    deferred: () => deferredCount,
    settle: () => batch(SETTLE, undefined).then(() => {}),
  };
}

/**
 * A statement as node-postgres' named prepared statement (its name from the text's hash): each pooled
 * connection parses and plans it once, then binds and executes.
 */
const statementNames = new Map<string, string>();
function named(text: string, params: readonly unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (!name) {
    name = `aipg_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    if (statementNames.size < 4_096) statementNames.set(text, name);
  }
  return { name, text, values: params as unknown[] };
}

async function openPostgres(url: string, schema: string, poolSize: number): Promise<Database> {
  if (schema !== 'public') {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    options: schema === 'public' ? undefined : `-c search_path=${schema}`,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const viaClient = (client: pg.PoolClient): Sql => {
    const sql: Sql = {
      async query<T extends Row>(text: string, params: readonly unknown[] = []) {
        const res = await client.query(named(text, params));
        return res.rows as T[];
      },
      transaction<T>(fn: (tx: Sql) => Promise<T>) {
        return fn(sql);
      },
    };
    return sql;
  };
  async function transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(viaClient(client));
      await client.query('COMMIT');
      return out;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
  // Plain statements use the pool directly (the server runs them in parallel); batch ops are grouped.
  const group = createGroupCommit({
    alone: async (text, params) => (await pool.query(named(text, params))).rows as Row[],
    transaction,
  });
  return {
    kind: 'postgres',
    async query<T extends Row>(text: string, params: readonly unknown[] = []) {
      // Plain statements skip the group: one issued after a deferred item waits for it.
      if (group.deferred()) await group.settle();
      const res = await pool.query(named(text, params));
      return res.rows as T[];
    },
    batch: group.batch,
    settle: group.settle,
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      if (group.deferred()) await group.settle();
      return transaction(fn);
    },
    /** The server's autovacuum reclaims dead rows, in its own processes. */
    async vacuum() {
      return [];
    },
    async close() {
      await group.settle();
      await pool.end();
    },
  };
}
