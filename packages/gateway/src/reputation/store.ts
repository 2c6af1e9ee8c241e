import { type Address, getAddress, type Hex } from 'viem';
import type { Sql } from '../storage/index.ts';
import type { ReputationEvent } from './events.ts';
import type { AuditRecord } from './policy.ts';

const CURSOR = 'grid';

export type ReputationCursor = {
  chainId: number;
  grid: string;
  fromBlock: bigint;
  /** First block not yet applied. */
  nextBlock: bigint;
  /** Hash of block `nextBlock - 1` when it was applied (reorg / fresh chain detection). */
  lastBlockHash: Hex | null;
};

function toRecord(r: Record<string, unknown>): AuditRecord {
  const time = (v: unknown) => (v == null ? null : new Date(v as string).getTime());
  return {
    owner: getAddress(r.owner as string),
    passes: Number(r.passes),
    fails: Number(r.fails),
    inconclusive: Number(r.inconclusive),
    slashes: Number(r.slashes),
    slashed: BigInt(r.slashed as string),
    lastFailAt: time(r.last_fail_at),
    lastSlashAt: time(r.last_slash_at),
    lastEventBlock: BigInt(r.last_event_block as string),
  };
}

/** Reputation's tables (`reputation_cursor`, `worker_audits`; migration 3). */
export function createReputationStore(db: Sql) {
  async function readCursor(sql: Sql = db, lock = false): Promise<ReputationCursor | undefined> {
    const rows = await sql.query<Record<string, unknown>>(
      `SELECT chain_id, grid, from_block::text AS from_block, next_block::text AS next_block, last_block_hash
       FROM reputation_cursor WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [CURSOR],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      chainId: Number(r.chain_id),
      grid: String(r.grid),
      fromBlock: BigInt(r.from_block as string),
      nextBlock: BigInt(r.next_block as string),
      lastBlockHash: (r.last_block_hash as Hex | null) ?? null,
    };
  }

  return {
    readCursor: () => readCursor(),
    /**
     * Starts following `grid` on `chainId` at `fromBlock`: clears every count when the stored cursor
     * is another chain or Grid (or `reset` says the chain lost the blocks it was built from).
     * Returns the cursor in force.
     */
    async initCursor(p: {
      chainId: number;
      grid: Address;
      fromBlock: () => Promise<bigint>;
      reset?: boolean;
    }): Promise<{ cursor: ReputationCursor; cleared: boolean }> {
      return db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(727274004)');
        const current = await readCursor(tx, true);
        const same = current && current.chainId === p.chainId && current.grid === p.grid.toLowerCase();
        if (same && !p.reset) return { cursor: current, cleared: false };
        const from = same ? current.fromBlock : await p.fromBlock();
        await tx.query('DELETE FROM worker_audits');
        await tx.query('DELETE FROM reputation_cursor');
        await tx.query(
          `INSERT INTO reputation_cursor (id, chain_id, grid, from_block, next_block) VALUES ($1, $2, $3, $4, $4)`,
          [CURSOR, p.chainId, p.grid.toLowerCase(), from.toString()],
        );
        return {
          cursor: {
            chainId: p.chainId,
            grid: p.grid.toLowerCase(),
            fromBlock: from,
            nextBlock: from,
            lastBlockHash: null,
          },
          cleared: current !== undefined,
        };
      });
    },
    /**
     * Applies the events of blocks [from, to] and moves the cursor past `to`, in one transaction, only
     * if the cursor is still at `from` (another replica may have applied the range): false otherwise.
     */
    async apply(p: {
      from: bigint;
      to: bigint;
      toHash: Hex;
      events: readonly (ReputationEvent & { time: number })[];
    }): Promise<boolean> {
      return db.transaction(async (tx) => {
        const cursor = await readCursor(tx, true);
        if (!cursor || cursor.nextBlock !== p.from) return false;
        const byOwner = new Map<string, AuditRecord>();
        for (const e of p.events) {
          const key = e.worker.toLowerCase();
          let r = byOwner.get(key);
          if (!r) {
            r = {
              owner: e.worker,
              passes: 0,
              fails: 0,
              inconclusive: 0,
              slashes: 0,
              slashed: 0n,
              lastFailAt: null,
              lastSlashAt: null,
              lastEventBlock: e.blockNumber,
            };
            byOwner.set(key, r);
          }
          if (e.blockNumber > r.lastEventBlock) r.lastEventBlock = e.blockNumber;
          if (e.type === 'slash') {
            r.slashes += 1;
            r.slashed += e.amount;
            r.lastSlashAt = Math.max(r.lastSlashAt ?? 0, e.time);
          } else if (e.verdict === 'pass') r.passes += 1;
          else if (e.verdict === 'inconclusive') r.inconclusive += 1;
          else {
            r.fails += 1;
            r.lastFailAt = Math.max(r.lastFailAt ?? 0, e.time);
          }
        }
        const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
        for (const r of byOwner.values()) {
          await tx.query(
            `INSERT INTO worker_audits (owner, passes, fails, inconclusive, slashes, slashed, last_fail_at, last_slash_at,
               last_event_block)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (owner) DO UPDATE SET
               passes = worker_audits.passes + EXCLUDED.passes,
               fails = worker_audits.fails + EXCLUDED.fails,
               inconclusive = worker_audits.inconclusive + EXCLUDED.inconclusive,
               slashes = worker_audits.slashes + EXCLUDED.slashes,
               slashed = worker_audits.slashed + EXCLUDED.slashed,
               last_fail_at = GREATEST(worker_audits.last_fail_at, EXCLUDED.last_fail_at),
               last_slash_at = GREATEST(worker_audits.last_slash_at, EXCLUDED.last_slash_at),
               last_event_block = GREATEST(worker_audits.last_event_block, EXCLUDED.last_event_block),
               updated_at = now()`,
            [
              r.owner,
              r.passes,
              r.fails,
              r.inconclusive,
              r.slashes,
              r.slashed.toString(),
              iso(r.lastFailAt),
              iso(r.lastSlashAt),
              r.lastEventBlock.toString(),
            ],
          );
        }
        await tx.query(
          `UPDATE reputation_cursor SET next_block = $2, last_block_hash = $3, updated_at = now() WHERE id = $1`,
          [CURSOR, (p.to + 1n).toString(), p.toHash],
        );
        return true;
      });
    },
    async loadAll(): Promise<AuditRecord[]> {
      const rows = await db.query<Record<string, unknown>>(
        `SELECT owner, passes, fails, inconclusive, slashes, slashed::text AS slashed, last_fail_at, last_slash_at,
           last_event_block::text AS last_event_block FROM worker_audits`,
      );
      return rows.map(toRecord);
    },
  };
}

export type ReputationStore = ReturnType<typeof createReputationStore>;
