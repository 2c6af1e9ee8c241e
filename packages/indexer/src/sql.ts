/**
 * What the indexer needs of a database: parameterised statements and transactions, on PostgreSQL or
 * PGlite (the gateway's `Database` is one). Bigints travel as decimal strings (`::text` casts out).
 */
export type Row = Record<string, unknown>;

export interface Sql {
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
}

/** Replicas on one PostgreSQL: only the holder of a named lease follows the chain. */
export type Leases = {
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
};
