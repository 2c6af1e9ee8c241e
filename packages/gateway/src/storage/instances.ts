import type { Sql } from './db.ts';

/**
 * Gateway processes sharing a database, each beating `alive_until` forward. An idempotency lock or a
 * running job whose process is known dead (it stopped beating, or it was retired) is taken over at once
 * instead of waiting out its lease. A process with no row (one that predates this table, during a
 * rolling upgrade) is never presumed dead: its lease decides.
 */
export const deadSql = (owner: string) =>
  `EXISTS (SELECT 1 FROM gateway_instances gi WHERE gi.id = ${owner} AND gi.alive_until <= now())`;

export function createInstanceStore(db: Sql) {
  return {
    /** Marks `id` alive for `ttlMs` more (inserting it on the first beat). */
    async beat(id: string, name: string, ttlMs: number): Promise<void> {
      await db.query(
        `INSERT INTO gateway_instances (id, name, alive_until) VALUES ($1, $2, now() + ($3 || ' milliseconds')::interval)
         ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until`,
        [id, name, String(ttlMs)],
      );
    },
    /**
     * Declares dead every other process of `name` (this one replaces them: the same host and port), or
     * with `all`, every other process (embedded PGlite: only one process can open the database). Returns
     * their ids.
     */
    async retireOthers(id: string, name: string, all = false): Promise<string[]> {
      const rows = await db.query<{ id: string }>(
        `UPDATE gateway_instances SET alive_until = 'epoch' WHERE id <> $1 AND ($3::boolean OR name = $2)
           AND alive_until > 'epoch' RETURNING id`,
        [id, name, all],
      );
      return rows.map((r) => r.id);
    },
    /** A clean stop: the process is dead now, for everyone. */
    async retire(id: string): Promise<void> {
      await db.query(`UPDATE gateway_instances SET alive_until = 'epoch' WHERE id = $1`, [id]);
    },
    /** The processes presumed dead now (their beat lapsed, or they stopped or were replaced). */
    async dead(): Promise<string[]> {
      const rows = await db.query<{ id: string }>(
        'SELECT id FROM gateway_instances WHERE alive_until <= now() ORDER BY id',
      );
      return rows.map((r) => r.id);
    },
    /** Forgets processes dead for a day. */
    async prune(): Promise<number> {
      const rows = await db.query(
        `DELETE FROM gateway_instances WHERE alive_until < now() - interval '1 day' RETURNING id`,
      );
      return rows.length;
    },
  };
}

export type InstanceStore = ReturnType<typeof createInstanceStore>;
