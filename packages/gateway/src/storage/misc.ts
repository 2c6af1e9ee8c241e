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

const spendOf = (row: { unsettled: string; reserved: string } | undefined): PayerSpend => ({
  unsettled: BigInt(row?.unsettled ?? '0'),
  reserved: BigInt(row?.reserved ?? '0'),
});

/**
 * Locks the payer's row until the caller's transaction ends (serialising balance checks per payer) and
 * returns what its escrow carries, read under the lock. One statement: the upsert creates the row or
 * locks it (an update of the conflicting row, like SELECT … FOR UPDATE). The totals are kept by the
 * triggers of migration 7 on every change of a reservation or a receipt's settlement.
 */
export async function lockPayer(tx: Sql, payer: Address): Promise<PayerSpend> {
  const rows = await tx.query<{ unsettled: string; reserved: string }>(
    `INSERT INTO payers (address) VALUES (lower($1)) ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address
     RETURNING unsettled::text AS unsettled, reserved::text AS reserved`,
    [payer],
  );
  return spendOf(rows[0]);
}

/** What a payer's escrow carries at this gateway (no lock: for display). */
export async function payerSpend(sql: Sql, payer: Address): Promise<PayerSpend> {
  const rows = await sql.query<{ unsettled: string; reserved: string }>(
    'SELECT unsettled::text AS unsettled, reserved::text AS reserved FROM payers WHERE address = lower($1)',
    [payer],
  );
  return spendOf(rows[0]);
}
