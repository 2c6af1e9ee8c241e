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

/** Serialises balance checks per payer: the row lock is held until the caller's transaction ends. */
export async function lockPayer(tx: Sql, payer: Address): Promise<void> {
  // One statement: the upsert creates the row or locks it (an update of the conflicting row), like
  // SELECT … FOR UPDATE, until the transaction ends.
  await tx.query(
    'INSERT INTO payers (address) VALUES ($1) ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address',
    [payer],
  );
}

/**
 * What a payer's escrow already carries at this gateway: fees of receipts not yet settled, and fees
 * held by its jobs in flight. One statement (both sums index-backed: receipts_unsettled_payer,
 * jobs_payer_active); in the payer's locked transaction, read after the lock (a fresh snapshot).
 */
export async function payerSpend(sql: Sql, payer: Address): Promise<{ unsettled: bigint; reserved: bigint }> {
  const rows = await sql.query<{ unsettled: string; reserved: string }>(
    `SELECT (SELECT COALESCE(SUM(fee), 0) FROM receipts WHERE payer = $1 AND settled = false)::text AS unsettled,
            (SELECT COALESCE(SUM(reserved_fee), 0) FROM jobs WHERE payer = $1 AND status IN ('queued', 'running'))::text
              AS reserved`,
    [payer],
  );
  return { unsettled: BigInt(rows[0]?.unsettled ?? '0'), reserved: BigInt(rows[0]?.reserved ?? '0') };
}
