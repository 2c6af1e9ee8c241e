import type { Address } from 'viem';
import type { Sql } from './db.ts';

/** Leases: one holder at a time for work that must not run twice across replicas (settlement). */
export function createLeaseStore(db: Sql) {
  return {
    /** Takes or renews `name` for `holder` for `ttlMs`; false while another holder's lease runs. */
    async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
      const rows = await db.query(
        `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + ($3 || ' milliseconds')::interval)
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
           WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now()
         RETURNING holder`,
        [name, holder, String(ttlMs)],
      );
      return rows.length === 1;
    },
    async release(name: string, holder: string): Promise<void> {
      await db.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
    },
  };
}

/** Signed audit requests already seen (replay protection), kept until their timestamp is stale anyway. */
export function createAuditNonceStore(db: Sql) {
  return {
    /** False when this signature was used before. */
    async use(signatureHash: string, expiresAt: Date): Promise<boolean> {
      await db.query('DELETE FROM audit_requests WHERE expires_at < now()');
      const rows = await db.query(
        'INSERT INTO audit_requests (signature_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING signature_hash',
        [signatureHash, expiresAt],
      );
      return rows.length === 1;
    },
  };
}

/** What a payer's escrow already carries at this gateway. */
export type PayerSpend = {
  /** Fees of receipts not yet settled on chain. */
  unsettled: bigint;
  /** Fees held by the payer's jobs in flight (queued or running). */
  reserved: bigint;
};

/**
 * What a payer's escrow carries at this gateway, from the totals the triggers of migration 7 keep (no
 * lock: for display; reservations lock and read the row in `jobs.insertReserved`).
 */
export async function payerSpend(sql: Sql, payer: Address): Promise<PayerSpend> {
  const rows = await sql.query<{ unsettled: string; reserved: string }>(
    'SELECT unsettled::text AS unsettled, reserved::text AS reserved FROM payers WHERE address = lower($1)',
    [payer],
  );
  return { unsettled: BigInt(rows[0]?.unsettled ?? '0'), reserved: BigInt(rows[0]?.reserved ?? '0') };
}
