import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
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

export interface Database extends Sql {
  readonly kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

export type OpenDatabaseParameters = {
  /** postgres://… for a server; undefined for PGlite. */
  url: string | undefined;
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

async function openPglite(dir: string, schema: string): Promise<Database> {
  const memory = dir === 'memory://' || dir === ':memory:';
  if (!memory) mkdirSync(dir, { recursive: true });
  const db = new PGlite(memory ? undefined : dir);
  await db.waitReady;
  if (schema !== 'public') {
    await db.exec(
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; SET search_path TO ${quoteIdent(schema)}`,
    );
  }
  const group = createGroupCommit(db);
  const wrap = (q: { query: PGlite['query'] }, inTx: boolean): Sql => {
    const sql: Sql = {
      async query<T extends Row>(text: string, params: readonly unknown[] = []) {
        // Outside a transaction, a statement commits with the others waiting at the same moment.
        if (!inTx) return group.query<T>(text, params);
        const res = await q.query<T>(text, params as unknown[]);
        return res.rows;
      },
      transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
        if (inTx) return fn(sql);
        // PGlite runs one statement at a time; its transaction() holds the connection for the callback.
        return db.transaction((tx) => fn(wrap(tx, true)));
      },
    };
    return sql;
  };
  const sql = wrap(db, false);
  return {
    kind: 'pglite',
    query: sql.query,
    transaction: sql.transaction,
    async close() {
      if (!db.closed) await db.close();
    },
  };
}

type Queued = {
  text: string;
  params: readonly unknown[];
  resolve: (rows: Row[]) => void;
  reject: (error: unknown) => void;
};

/**
 * Group commit for embedded PGlite, which runs one statement at a time and pays for a commit (its WAL
 * written to the data directory) after each: statements issued outside a transaction while another
 * group is running wait for it, then run together in one transaction, and each caller's promise settles
 * only after that transaction commits. Alone, a statement runs at once as before. Under load this turns
 * one commit per statement into one per group (a request's writes cost ~0.15 ms instead of ~0.4 ms
 * each). A statement that fails aborts the group's transaction: the group then runs again statement by
 * statement, so each caller gets exactly its own result or error, as if it had run alone.
 */
function createGroupCommit(db: PGlite) {
  let queue: Queued[] = [];
  let running = false;

  async function runAlone(item: Queued): Promise<void> {
    try {
      item.resolve((await db.query<Row>(item.text, item.params as unknown[])).rows);
    } catch (error) {
      item.reject(error);
    }
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        if (batch.length === 1) {
          await runAlone(batch[0]!);
          continue;
        }
        let results: Row[][] | undefined;
        try {
          results = await db.transaction(async (tx) => {
            const out: Row[][] = [];
            for (const item of batch)
              out.push((await tx.query<Row>(item.text, item.params as unknown[])).rows);
            return out;
          });
        } catch {
          results = undefined;
        }
        if (results) for (const [i, item] of batch.entries()) item.resolve(results[i]!);
        else for (const item of batch) await runAlone(item);
      }
    } finally {
      running = false;
    }
  }

  return {
    query<T extends Row>(text: string, params: readonly unknown[]): Promise<T[]> {
      return new Promise<T[]>((resolve, reject) => {
        queue.push({ text, params, resolve: resolve as (rows: Row[]) => void, reject });
        if (!running) void drain();
      });
    },
  };
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
        const res = await client.query(text, params as unknown[]);
        return res.rows as T[];
      },
      transaction<T>(fn: (tx: Sql) => Promise<T>) {
        return fn(sql);
      },
    };
    return sql;
  };
  return {
    kind: 'postgres',
    async query<T extends Row>(text: string, params: readonly unknown[] = []) {
      const res = await pool.query(text, params as unknown[]);
      return res.rows as T[];
    },
    async transaction<T>(fn: (tx: Sql) => Promise<T>) {
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
    },
    async close() {
      await pool.end();
    },
  };
}
